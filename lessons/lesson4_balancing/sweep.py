"""The several-seeds comparison of Lesson 4: one row per run, judged by the verdict rule, and a
recorded copy of the default comparison so the page shows it at once.

Why a recording: 15 runs of 300 steps took 15.6 s on the 2-core course machine (issue 18), far over a
learner's patience. For the default settings the page shows the runs recorded by
`python bench/bench_collapse.py --record` (seeds 0-9 of every method, this module's RECORDED file),
labelled with where and with which torch they were recorded, and offers to recompute them on this
server with a progress bar. Any other setting trains live, with the same progress bar.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from moe_core.collapse_verdict import VERDICTS, judge
from moe_core.train import TrainConfig, TrainResult

RECORDED = Path(__file__).with_name("recorded_sweep.json")
VARYING = ("balance", "seed")  # what a recorded run may differ in from the default config


@dataclass(frozen=True)
class SweepRow:
    """One run of the comparison: its verdict and the numbers the table and chart show."""

    balance: str
    seed: int
    verdict: str  # one of collapse_verdict.VERDICTS
    end_top_share: float  # the rule's top share over the final stretch
    dead: int  # held-out dead experts after training
    max_load: float  # held-out max share after training
    final_loss: float  # held-out task loss
    seconds: float


def row_of(result: TrainResult) -> SweepRow:
    v = judge(result.history.load, result.history.loss)
    return SweepRow(
        balance=result.config.balance,
        seed=result.config.seed,
        verdict=v.label,
        end_top_share=round(v.end_top_share, 4),
        dead=result.stats.dead_experts,
        max_load=round(result.stats.max_load, 4),
        final_loss=round(result.final_loss, 4),
        seconds=round(result.seconds, 3),
    )


def _base(config: TrainConfig) -> dict:
    return {k: v for k, v in asdict(config).items() if k not in VARYING}


def recording(rows: Sequence[SweepRow], where: str, torch_version: str) -> dict:
    """The JSON object `bench_collapse.py --record` writes (rows trained with the default config)."""
    return {
        "where": where,
        "torch": torch_version,
        "config": _base(TrainConfig()),
        "rows": [asdict(r) for r in rows],
    }


def load_recording(path: Path = RECORDED) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def recorded_rows(configs: Sequence[TrainConfig], recording: dict | None) -> list[SweepRow] | None:
    """The recorded rows for `configs`, in order, or None unless every one was recorded with
    exactly these settings (only seed and balancing may differ from the recording's config)."""
    if recording is None:
        return None
    by_key = {(r["balance"], r["seed"]): r for r in recording.get("rows", [])}
    rows = []
    for config in configs:
        row = by_key.get((config.balance, config.seed))
        if row is None or _base(config) != recording.get("config"):
            return None
        rows.append(SweepRow(**row))
    return rows


def sweep_table(rows: Sequence[SweepRow], modes: Mapping[str, str]) -> pd.DataFrame:
    """Per method: how many seeds got each verdict, the median top share and the mean loss."""
    out = []
    for mode, label in modes.items():
        rs = [r for r in rows if r.balance == mode]
        if not rs:
            continue
        counts = {v: f"{sum(r.verdict == v for r in rs)} of {len(rs)}" for v in VERDICTS}
        out.append(
            {
                "balancing": label,
                **counts,
                "median top share (end)": round(statistics.median(r.end_top_share for r in rs), 2),
                "median dead (held-out)": statistics.median(r.dead for r in rs),
                "mean loss (held-out)": round(statistics.fmean(r.final_loss for r in rs), 3),
            }
        )
    return pd.DataFrame(out).set_index("balancing")
