"""MoELM against transformers' MixtralForCausalLM on the same shipped checkpoint, in one process.

    python bench/bench_lm.py                      # forward 128 / 512 tokens, greedy decode, 1 and 2 threads
    python bench/bench_lm.py --json out.json      # also write the rows as JSON

Both models load moe_core/weights/lm/ in float32 and see the same held-out text. Each measurement
alternates the two models call by call (ours, theirs, ours, ...), so a neighbour's load on a shared
machine slows both alike and the ratio stays meaningful; medians are reported. Before timing, the
logits are checked equal (1e-4), so the two are timed doing the same computation.
Decode: a 32-token prompt, then 64 greedy tokens with a KV cache (MoELM.generate vs
transformers' generate(do_sample=False)), reported as new tokens per second including the prefill.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from moe_core.lm import SHIPPED, MoELM, load_tokenizer


def held_out_ids(tok, n: int) -> torch.Tensor:
    sample = json.loads((SHIPPED / "heldout_sample.json").read_text())
    text = "".join(p["text"] for g in ("code", "prose") for p in sample[g])
    ids = tok.encode(text, add_special_tokens=False).ids
    while len(ids) < n:
        ids = ids + ids
    return torch.tensor([ids[:n]])


def timed_pair(fn_a, fn_b, repeats: int) -> tuple[float, float]:
    """Median seconds of fn_a and fn_b, called alternately (one warm-up call each)."""
    fn_a(), fn_b()
    a, b = [], []
    for _ in range(repeats):
        for fn, out in ((fn_a, a), (fn_b, b)):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return statistics.median(a), statistics.median(b)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--decode-repeats", type=int, default=3)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    warnings.filterwarnings("ignore")
    from transformers import AutoModelForCausalLM

    ours = MoELM.from_pretrained(SHIPPED)
    theirs = AutoModelForCausalLM.from_pretrained(SHIPPED, dtype=torch.float32).eval()
    tok = load_tokenizer(SHIPPED)
    rows = []
    with torch.no_grad():
        prompt, new = held_out_ids(tok, 32), args.new_tokens
        gen_ours = lambda: list(ours.generate(prompt[0], max_new_tokens=new))
        gen_theirs = lambda: theirs.generate(
            prompt, max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0
        )
        probe = held_out_ids(tok, 128)
        diff = (ours(probe).logits - theirs(probe).logits).abs().max().item()
        assert diff < 1e-4, f"logits differ by {diff}: not the same computation"
        for threads in args.threads:
            torch.set_num_threads(threads)
            for n in (128, 512):
                ids = held_out_ids(tok, n)
                a, b = timed_pair(lambda ids=ids: ours(ids), lambda ids=ids: theirs(ids), args.repeats)
                rows.append(
                    {
                        "case": f"forward {n} tokens",
                        "threads": threads,
                        "unit": "ms",
                        "moelm": a * 1e3,
                        "transformers": b * 1e3,
                        "speedup": b / a,
                    }
                )
                print(f"  measured {rows[-1]}", file=sys.stderr, flush=True)
            assert gen_ours() == gen_theirs()[0, 32:].tolist(), "greedy decodes differ"
            a, b = timed_pair(gen_ours, gen_theirs, args.decode_repeats)
            rows.append(
                {
                    "case": f"greedy decode {new} tokens (KV cache)",
                    "threads": threads,
                    "unit": "tokens/s",
                    "moelm": new / a,
                    "transformers": new / b,
                    "speedup": b / a,
                }
            )
            print(f"  measured {rows[-1]}", file=sys.stderr, flush=True)
    total, active = ours.num_params()
    print(
        f"MoELM vs transformers {__import__('transformers').__version__} MixtralForCausalLM, "
        f"{total / 1e6:.2f}M params ({active / 1e6:.2f}M active), torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}; max |logit diff| {diff:.1e}\n"
    )
    print("| case | threads | MoELM | transformers | MoELM speed-up |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['case']} | {r['threads']} | {r['moelm']:.1f} {r['unit']} | "
            f"{r['transformers']:.1f} {r['unit']} | {r['speedup']:.2f}x |"
        )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "max_logit_diff": diff}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
