"""The same-budget comparison behind Lessons 1 and 4: the MoE LM against dense models and against
itself without balancing, trained on the same batches in the same order.

    python -m moe_core compare-lm --run moe=DIR --run dense_active=DIR --run dense_total=DIR \
                                  --run no_balancing=DIR [--out moe_core/weights/lm/comparison.json]

Each DIR is a finished `python -m moe_core train-lm` folder. The runs' weights are not shipped
(17 MB each); what the lessons need is: parameters, time, held-out bits per byte, the training
loss at every step and, for the MoE runs, each layer's expert shares every few steps. The command
writes that as one JSON file and prints the table that bench/RESULTS.md records.

Why every run sees the same batches: `train-lm` draws the batch of step s from (seed, s) alone,
so the training losses of two runs are compared on identical text, step by step.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path

from moe_core.lm import SHIPPED

COMPARISON = SHIPPED / "comparison.json"
COMPARISON_LONG = SHIPPED / "comparison_long.json"  # (a) and (b) only, at three times the tokens
RUNS: dict[str, str] = {
    "moe": "(a) MoE: 8 experts, top-2",
    "dense_active": "(b) dense, same active parameters",
    "dense_total": "(c) dense, about the same total parameters",
    "no_balancing": "(d) the MoE without balancing",
}
TRAIN_FLAGS = {"moe": "", "dense_active": "--dense active", "dense_total": "--dense total",
               "no_balancing": "--aux-coef 0"}  # fmt: skip


def collect(run_dir: Path) -> dict:
    """One finished train-lm folder as the comparison keeps it."""
    summary = json.loads((run_dir / "train_summary.json").read_text())
    history = json.loads((run_dir / "loss_curve.json").read_text())
    shares = [p for p in history if "expert_share" in p]
    return {
        "params_total": summary["params_total"],
        "params_active": summary["params_active"],
        "steps": summary["steps"],
        "tokens": summary["tokens"],
        "train_seconds": summary["train_seconds"],
        "aux_coef": summary["args"]["aux_coef"],
        "heldout_bpb": summary["heldout_bits_per_byte"],
        "loss": [p["loss"] for p in history],  # training loss (nats/token) at steps 1, 2, ...
        "seconds": [p["seconds"] for p in history],  # training time by the end of each step
        "heldout_curve": [{"step": p["step"], **p["heldout_bpb"]} for p in history if "heldout_bpb" in p],
        "share_steps": [p["step"] for p in shares],
        "expert_share": [p["expert_share"] for p in shares],  # [point][layer][expert]
    }


def build(run_dirs: Mapping[str, Path], where: str) -> dict:
    """The comparison file's content; refuses runs that did not see the same token budget."""
    unknown = sorted(set(run_dirs) - set(RUNS))
    if unknown:
        raise ValueError(f"unknown run names {unknown}; expected some of {sorted(RUNS)}")
    runs = {name: collect(Path(d)) for name, d in run_dirs.items()}
    budgets = {(r["steps"], r["tokens"]) for r in runs.values()}
    if len(budgets) != 1:
        raise ValueError(f"the runs did not train on the same token budget: {sorted(budgets)}")
    steps, tokens = budgets.pop()
    return {"steps": steps, "tokens": tokens, "where": where,
            "runs": {name: {"label": RUNS[name], **runs[name]} for name in RUNS if name in runs}}  # fmt: skip


def load_comparison(path: Path = COMPARISON) -> dict:
    """The shipped comparison (see `build`)."""
    return json.loads(Path(path).read_text())


def top_share(shares_of_point: list[list[float]]) -> list[float]:
    """Per layer, the busiest expert's share of routed slots (1/E = even, 1 = every slot)."""
    return [max(layer) for layer in shares_of_point]


def table(comparison: Mapping) -> str:
    """The Markdown table of bench/RESULTS.md."""
    rows = [
        "| run | total params | active params | held-out bits/byte, code | prose | busiest expert, last step "
        "(mean over layers) | training time |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in comparison["runs"].values():
        shares = run["expert_share"]
        busiest = sum(top_share(shares[-1])) / len(shares[-1]) if shares else None
        rows.append(
            f"| {run['label']} | {run['params_total'] / 1e6:.2f}M | {run['params_active'] / 1e6:.2f}M "
            f"| {run['heldout_bpb']['code']:.4f} | {run['heldout_bpb']['prose']:.4f} "
            f"| {'–' if busiest is None else f'{busiest:.2f}'} | {run['train_seconds'] / 60:.1f} min |"
        )
    return "\n".join(rows)


def cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m moe_core compare-lm", description=__doc__.split("\n")[0])
    p.add_argument("--run", action="append", default=[], metavar="NAME=DIR",
                   help=f"a finished train-lm folder; NAME one of {', '.join(RUNS)}")  # fmt: skip
    p.add_argument("--out", type=Path, default=COMPARISON)
    p.add_argument("--where", default="", help="the machine and how the runs shared it, for the record")
    args = p.parse_args(argv)
    try:
        dirs = dict(item.split("=", 1) for item in args.run)
        comparison = build({k: Path(v) for k, v in dirs.items()}, args.where)
    except (ValueError, OSError, KeyError) as e:
        print(f"compare-lm: {e}", file=sys.stderr)
        return 2
    args.out.write_text(json.dumps(comparison, separators=(",", ":")) + "\n")
    print(table(comparison))
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
