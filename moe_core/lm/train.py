"""`python -m moe_core train-lm` — rebuild the shipped `MoELM` from the corpus, seeded and resumable.

    python -m moe_core train-lm --out DIR [--steps N] [--seed S] [--smoke] [--resume]
                                [--dense {active,total}] [--aux-coef A] [--minutes M]

Steps: build the corpus (moe_core.lm.corpus) -> train the byte-level BPE on the training documents
-> tokenise each genre into one stream (documents joined by </s>) -> AdamW, warmup-stable-decay,
on random windows (a fixed share of rows from prose) -> every `--eval-every` steps, held-out bits
per byte per genre -> DIR holds a Hugging Face Mixtral folder plus the manifest, the loss curve
and a summary. The batch of step s is a function of (seed, s) alone, so `--resume` from the
periodic checkpoint in DIR/.train/ continues the same run.

Baselines for Lesson 1 and 4 with the same token budget: `--dense active` (one SwiGLU FFN of width
K*F: the MoE's active parameters per token), `--dense total` (width E*F: about its total
parameters), `--aux-coef 0` (no balancing at all). A dense model is the same Mixtral with E = K = 1.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from moe_core.lm import corpus as corpus_mod
from moe_core.lm import tokenizer as tok_mod
from moe_core.lm.model import LMConfig, MoELM

SHIPPED_CONFIG = LMConfig(
    hidden_size=192,
    intermediate_size=384,
    num_hidden_layers=4,
    num_attention_heads=6,
    num_key_value_heads=6,
    vocab_size=4096,
)
SMOKE_CONFIG = LMConfig(
    hidden_size=32,
    intermediate_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=2,
    vocab_size=384,
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m moe_core train-lm", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, type=Path, help="output folder (a Mixtral checkpoint)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default 1200: the shipped run)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny corpus slice and model: seconds, for tests")
    p.add_argument("--resume", action="store_true", help="continue from DIR/.train/state.pt")
    p.add_argument("--batch", type=int, default=16, help="rows per step")
    p.add_argument("--seq", type=int, default=256, help="tokens per row")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=80, help="linear warmup steps (smoke: 4)")
    p.add_argument("--decay-share", type=float, default=0.2, help="final share of steps that decays the lr")
    p.add_argument("--aux-coef", type=float, default=0.01, help="Switch alpha; 0 = no balancing")
    p.add_argument("--dense", choices=("active", "total"), default=None, help="dense baseline instead")
    p.add_argument("--prose-share", type=float, default=0.15, help="share of rows drawn from prose")
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--save-every", type=int, default=100, help="steps between resumable checkpoints")
    p.add_argument(
        "--stop-after",
        type=int,
        default=None,
        help="stop after this step of the --steps schedule (a slice; --resume continues it)",
    )
    p.add_argument("--minutes", type=float, default=None, help="stop (and finish cleanly) after this long")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument(
        "--store-dtype",
        choices=("float32", "float16"),
        default="float16",
        help="dtype of model.safetensors (float16 keeps the shipped folder under 30 MB)",
    )
    args = p.parse_args(argv)
    if args.steps is None:
        args.steps = 40 if args.smoke else 1200
    if args.smoke:
        args.batch, args.seq, args.eval_every, args.save_every, args.warmup = 8, 64, 20, 20, 4
    return args


def model_config(args) -> LMConfig:
    cfg = SMOKE_CONFIG if args.smoke else SHIPPED_CONFIG
    cfg = replace(cfg, router_aux_loss_coef=args.aux_coef)
    if args.dense:
        width = cfg.intermediate_size * (
            cfg.num_experts_per_tok if args.dense == "active" else cfg.num_local_experts
        )
        cfg = replace(cfg, intermediate_size=width, num_local_experts=1, num_experts_per_tok=1)
    return cfg


# --- data -------------------------------------------------------------------------------------------


def prepare_data(args, work: Path) -> dict:
    """Corpus -> tokenizer -> token streams (cached in work/ so a resume skips this)."""
    docs = corpus_mod.load_corpus()
    if args.smoke:  # a deterministic slice: per genre, the first few training and held-out documents
        docs = [
            d
            for g, n in (("code", 10), ("prose", 20))
            for held in (False, True)
            for d in [d for d in docs if d.genre == g and d.heldout == held][: n if not held else 2]
        ]
    sha = corpus_mod.corpus_sha256(docs)
    cached = work / "data.npz"
    if (
        (work / "tokenizer.json").exists()
        and cached.exists()
        and json.loads((work / "data.json").read_text())["sha256"] == sha
    ):
        tok = tok_mod.load_tokenizer(work)
        arrays = dict(np.load(cached))
    else:
        vocab = (SMOKE_CONFIG if args.smoke else SHIPPED_CONFIG).vocab_size
        log(f"training a byte-level BPE of {vocab} on {sum(not d.heldout for d in docs)} documents")
        tok = tok_mod.train_tokenizer((d.text for d in docs if not d.heldout), vocab)
        tok.save(str(work / "tokenizer.json"))
        arrays = {}
        for genre in corpus_mod.GENRES:
            for split, held in (("train", False), ("heldout", True)):
                part = [d.text for d in docs if d.genre == genre and d.heldout == held]
                ids = [i for enc in tok.encode_batch(part, add_special_tokens=False) for i in [*enc.ids, 2]]
                arrays[f"{genre}_{split}"] = np.asarray(ids, dtype=np.uint16)
        np.savez(cached, **arrays)
        (work / "data.json").write_text(json.dumps({"sha256": sha}))
    return {"docs": docs, "tok": tok, "arrays": arrays}


def batch_for_step(arrays: dict, args, step: int) -> torch.Tensor:
    """Rows [B, seq+1] for one step: a pure function of (seed, step), so a resume repeats nothing."""
    rng = np.random.default_rng([args.seed, step])
    rows = []
    for _ in range(args.batch):
        genre = "prose" if rng.random() < args.prose_share else "code"
        stream = arrays[f"{genre}_train"]
        start = int(rng.integers(0, len(stream) - args.seq - 1))
        rows.append(stream[start : start + args.seq + 1].astype(np.int64))
    return torch.from_numpy(np.stack(rows))


@torch.no_grad()
def heldout_bpb(
    model: MoELM, arrays: dict, byte_len: torch.Tensor, seq: int, max_windows: int | None
) -> dict:
    """Bits per UTF-8 byte on held-out text, per genre: sum of -log2 p(token) / bytes of those tokens."""
    model.eval()
    result = {}
    for genre in corpus_mod.GENRES:
        stream = torch.from_numpy(arrays[f"{genre}_heldout"].astype(np.int64))
        n = (len(stream) - 1) // seq
        if n < 1:
            continue  # too little held-out text of this genre (only in tiny slices)
        idx = range(n) if max_windows is None else np.linspace(0, n - 1, min(n, max_windows)).astype(int)
        nats = nbytes = 0.0
        for chunk in np.array_split(np.asarray(list(idx)), max(1, math.ceil(len(idx) / 16))):
            x = torch.stack([stream[i * seq : i * seq + seq + 1] for i in chunk])  # [b, seq+1]
            logits = model(x[:, :-1]).logits
            nats += F.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten(), reduction="sum").item()
            nbytes += byte_len[x[:, 1:]].sum().item()
        result[genre] = nats / math.log(2) / max(nbytes, 1.0)
    model.train()
    return result


# --- training ---------------------------------------------------------------------------------------


def lr_at(step: int, args) -> float:
    """Warmup-stable-decay (Hägele et al. 2024, https://arxiv.org/abs/2405.18392): linear warmup,
    constant, then a linear decay to lr/10 over the last `decay_share` of the steps.

    NOTE: chosen over cosine because the schedule before the decay does not depend on --steps, so a
    run on a busy shared machine can be resumed with a different --steps (set before the decay
    starts) and is then exactly the run that had that --steps from the start.
    """
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    decay_start = int(args.steps * (1 - args.decay_share))
    if step < decay_start:
        return args.lr
    return args.lr * (1 - 0.9 * (step - decay_start) / max(1, args.steps - decay_start))


LOAD_EVERY = 5  # steps between recorded expert loads (Lesson 4 plots them; every step is 5x the file)


def expert_shares(out) -> list[list[float]]:
    """Per layer, the share of this batch's routed slots each expert received (sums to 1)."""
    return [
        (torch.bincount(ids.flatten(), minlength=out.num_experts).double() / ids.numel()).tolist()
        for ids in out.topk_ids
    ]


def train_step(
    model, opt, x: torch.Tensor, aux_coef: float, shares: bool = False
) -> tuple[float, float, list[list[float]] | None]:
    """One AdamW step; returns the LM loss, the Switch loss and (when asked) the batch's expert
    shares per layer."""
    out = model(x[:, :-1])
    loss = F.cross_entropy(out.logits.flatten(0, 1), x[:, 1:].flatten())
    total = loss + aux_coef * out.aux_loss if aux_coef else loss
    opt.zero_grad(set_to_none=True)
    total.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item(), out.aux_loss.item(), expert_shares(out) if shares else None


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cli(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    work = args.out / ".train"
    work.mkdir(parents=True, exist_ok=True)
    data = prepare_data(args, work)
    arrays, tok = data["arrays"], data["tok"]
    byte_len = torch.tensor(tok_mod.token_bytes(tok), dtype=torch.float64)
    cfg = replace(model_config(args), vocab_size=tok.get_vocab_size())
    torch.manual_seed(args.seed)
    model = MoELM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    state_path, step, history, elapsed = work / "state.pt", 0, [], 0.0
    if args.resume and state_path.exists():
        state = torch.load(state_path, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, history, elapsed = state["step"], state["history"], state["seconds"]
        log(f"resumed at step {step}")
    total, active = model.num_params()
    log(
        f"MoELM {total / 1e6:.2f}M params ({active / 1e6:.2f}M active), {args.steps} steps of "
        f"{args.batch}x{args.seq} tokens, torch threads {torch.get_num_threads()}"
    )
    model.train()
    t0, window_loss = time.perf_counter() - elapsed, []
    while step < args.steps:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        record = cfg.num_local_experts > 1 and ((step + 1) % LOAD_EVERY == 0 or step == 0)
        loss, aux, shares = train_step(model, opt, batch_for_step(arrays, args, step), args.aux_coef, record)
        step += 1
        window_loss.append(loss)
        seconds = time.perf_counter() - t0
        if step % 10 == 0 or step == args.steps:
            rate = seconds / step if not history else (seconds - elapsed) / max(1, len(window_loss))
            log(
                f"step {step}/{args.steps}  loss {loss:.3f}  aux {aux:.3f}  {seconds:.0f}s  "
                f"eta {rate * (args.steps - step) / 60:.1f} min"
            )
        point = {
            "step": step,
            "tokens": step * args.batch * args.seq,
            "seconds": round(seconds, 1),
            "loss": round(loss, 4),
            "aux_loss": round(aux, 4),
        }
        if shares is not None:
            point["expert_share"] = [[round(v, 4) for v in layer] for layer in shares]
        if step % args.eval_every == 0 or step == args.steps:
            point["heldout_bpb"] = {
                g: round(v, 4) for g, v in heldout_bpb(model, arrays, byte_len, args.seq, 32).items()
            }
            log(f"  held-out bits/byte {point['heldout_bpb']}")
        history.append(point)
        out_of_time = args.minutes is not None and seconds > args.minutes * 60
        out_of_time = out_of_time or (args.stop_after is not None and step >= args.stop_after)
        if step % args.save_every == 0 or step == args.steps or out_of_time:
            torch.save(
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "step": step,
                    "history": history,
                    "seconds": seconds,
                    "args": vars(args),
                },
                state_path,
            )
        if out_of_time:
            log(f"stopping at step {step} (time budget or --stop-after)")
            break
    finish(args, model, data, byte_len, history, time.perf_counter() - t0)
    return 0


def finish(args, model: MoELM, data: dict, byte_len, history: list, seconds: float) -> None:
    """Write the shipped folder: checkpoint, tokenizer, manifest, held-out sample, curve, summary."""
    out = args.out
    dtype = getattr(torch, args.store_dtype)
    model.save_pretrained(out, dtype=dtype)
    tok_mod.save_tokenizer(data["tok"], out)
    docs = data["docs"]
    manifest = corpus_mod.manifest(docs)
    manifest["smoke_slice"] = args.smoke
    (out / "corpus_manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    (out / "heldout_sample.json").write_text(json.dumps(corpus_mod.heldout_sample(docs), indent=1) + "\n")
    (out / "loss_curve.json").write_text(json.dumps(history) + "\n")
    # Final evaluation on every held-out window, with the weights as stored (rounded to store dtype).
    stored = MoELM.from_pretrained(out)
    bpb = heldout_bpb(stored, data["arrays"], byte_len, args.seq, None)
    total, active = model.num_params()
    summary = {
        "heldout_bits_per_byte": {g: round(v, 4) for g, v in bpb.items()},
        "heldout_tokens": {g: len(data["arrays"][f"{g}_heldout"]) for g in corpus_mod.GENRES},
        "params_total": total,
        "params_active": active,
        "steps": history[-1]["step"] if history else 0,
        "tokens": history[-1]["tokens"] if history else 0,
        "train_seconds": round(seconds, 1),
        "torch_threads": torch.get_num_threads(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "corpus_sha256": manifest["sha256"],
        "python_version": manifest["python_version"],
    }
    (out / "train_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    log(f"held-out bits/byte {summary['heldout_bits_per_byte']}; wrote {out}")
    print(
        json.dumps(
            {
                k: summary[k]
                for k in (
                    "heldout_bits_per_byte",
                    "params_total",
                    "params_active",
                    "steps",
                    "tokens",
                    "train_seconds",
                )
            }
        )
    )
