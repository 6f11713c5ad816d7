"""What the experts of the course's language model learn, measured on held-out text.

Reproduces the routing analysis of Mixtral's paper (Jiang et al., 2024, §5) on our own model:
per layer, how much the genre (Python code vs English prose) and the token class tell about the
top-1 expert (mutual information, bits), how often consecutive tokens keep their expert, and each
figure beside two baselines DESIGN.md asks for — the same architecture untrained (random weights,
seed 0: its router already sees token identity through the embeddings) and a shuffled-label
control (genres swapped between whole passages; token classes shuffled).

Run `python -m moe_core.lm_report` to write `routing_report.json` beside the shipped checkpoint;
the app reads that file (routing ~3,000 tokens twice takes seconds on 2 cores), and a test
recomputes it and checks it matches, so the shipped numbers stay what the model does.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from moe_core.lm import SHIPPED, MoELM, load_tokenizer
from moe_core.routing_analysis import RoutingSummary, summarize
from moe_core.routing_probe import RoutingSettings, forward_with_routing

MAX_TOKENS_PER_PASSAGE = 512
REPORT_FILE = "routing_report.json"
FIGURES = ("genre_mi", "genre_mi_control", "class_mi", "class_mi_control", "same_expert_rate",
           "chance_rate")  # fmt: skip


def untrained_like(model: MoELM, seed: int = 0) -> MoELM:
    """The same architecture with fresh random weights: the baseline of every routing figure."""
    torch.manual_seed(seed)
    return MoELM(model.config).eval()


def heldout_summary(model: MoELM, tok, sample: dict[str, list[dict[str, str]]]) -> RoutingSummary:
    """Route every held-out passage on its own and summarise all of them together."""
    layers: list[list[torch.Tensor]] = [[] for _ in model.layers]
    tokens: list[str] = []
    genres: list[str] = []
    docs: list[int] = []  # passage index of every token
    for genre, passages in sorted(sample.items()):
        for passage in passages:
            enc = tok.encode(passage["text"], add_special_tokens=False)
            if len(enc.ids) < 2:
                continue
            ids = torch.tensor([enc.ids[:MAX_TOKENS_PER_PASSAGE]])
            out = forward_with_routing(model, ids, RoutingSettings(top_k=model.config.num_experts_per_tok))
            for layer, logits in enumerate(out.router_logits):
                layers[layer].append(logits)
            tokens += [passage["text"][a:b] for a, b in enc.offsets[:MAX_TOKENS_PER_PASSAGE]]
            docs += [docs[-1] + 1 if docs else 0] * ids.shape[1]
            genres += [genre] * ids.shape[1]
    if not tokens:
        raise ValueError("the held-out sample has no passage of two or more tokens")
    return summarize([torch.cat(chunks) for chunks in layers], tokens, model.config.num_experts_per_tok,
                     genres=genres, doc_ids=torch.tensor(docs), num_shuffles=20, seed=0)  # fmt: skip


def report(path: Path = SHIPPED) -> dict:
    """Trained and untrained figures per layer, plus the shares the lesson draws (JSON-ready)."""
    model = MoELM.from_pretrained(path).eval()
    tok = load_tokenizer(path)
    sample = json.loads((path / "heldout_sample.json").read_text(encoding="utf-8"))
    out: dict = {"tokens": None}
    for name, m in (("trained", model), ("untrained", untrained_like(model))):
        s = heldout_summary(m, tok, sample)
        out["tokens"] = len(s.token_classes)
        out[name] = {key: [round(v, 4) for v in getattr(s, key)] for key in FIGURES}
        out[name]["genre_labels"] = s.genre_labels
        out[name]["genre_share"] = _rounded(s.genre_share.tolist())
        out[name]["class_labels"] = s.class_labels
        out[name]["class_share"] = _rounded(s.class_share.tolist())
    return out


def _rounded(nested: list) -> list:
    return [_rounded(v) for v in nested] if isinstance(nested, list) else round(nested, 4)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m moe_core.lm_report", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=SHIPPED)
    args = parser.parse_args(argv)
    data = report(args.checkpoint)
    (args.checkpoint / REPORT_FILE).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.checkpoint / REPORT_FILE} ({data['tokens']} held-out tokens)")


if __name__ == "__main__":
    main()
