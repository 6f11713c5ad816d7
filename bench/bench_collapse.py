"""How long does a Lesson 4 training run take, and does the collapse it teaches really happen?

    python bench/bench_collapse.py            # timing table: per balancing mode and per path
    python bench/bench_collapse.py --sweep    # plus the 10-seed sweep behind the lesson's claims
    python bench/bench_collapse.py --comparison --no-timing   # the page's five-seed comparison
    python bench/bench_collapse.py --record --no-timing       # re-record the comparison the page ships

Paths timed (issue 6's budgets on the 2-core course machine: the page's default run ≤ 2 s
including its live charts; the `seconds` the CLI reports ≤ 1.5 s):

    train       `moe_core.train.train(config)` alone, as `seconds` in the CLI's JSON
    page        the same run plus what the page does while it trains: every 5 steps a progress
                report, and every POLL_S of wall time the three live figures built and serialised
    cli         `python -m moe_core collapse --json` as a subprocess: wall time and its `seconds`

Timings are medians of --repeat runs (seeds 0..repeat-1); torch uses one thread, as in the app.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lessons.lesson4_balancing import figures as charts  # noqa: E402
from lessons.lesson4_balancing import figures_runs as runs_charts  # noqa: E402
from lessons.lesson4_balancing.state import MODES  # noqa: E402
from lessons.lesson4_balancing.sweep import (  # noqa: E402
    RECORDED,
    load_recording,
    recorded_rows,
    recording,
    row_of,
    sweep_table,
)
from moe_core.collapse_verdict import VERDICTS, judge  # noqa: E402
from moe_core.train import BALANCE_MODES, Progress, TrainConfig, is_balanced, is_collapsed, train  # noqa: E402

POLL_S = 0.3  # as lessons/lesson4_balancing/__init__.py


def time_train(config: TrainConfig) -> float:
    return train(config).seconds


def time_page(config: TrainConfig) -> float:
    """Train with the page's callback, building and serialising its figures every POLL_S."""
    last = [0.0]

    def draw(progress: Progress) -> None:
        n = progress.step
        loads, losses = progress.history.load[:n], progress.history.loss[:n]
        for fig in (
            charts.load_bars(loads[-1]),
            charts.load_over_time(loads, total_steps=progress.total),
            charts.loss_curve({"task loss": losses}, total_steps=progress.total),
        ):
            fig.to_json()

    def callback(progress: Progress) -> bool:
        now = time.perf_counter()
        if now - last[0] >= POLL_S or progress.step == progress.total:
            last[0] = now
            draw(progress)
        return False

    start = time.perf_counter()
    train(config, callback, every=5)
    return time.perf_counter() - start


def time_cli(mode: str, seed: int) -> tuple[float, float]:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "moe_core", "collapse", "--balance", mode, "--seed", str(seed), "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - start, json.loads(out.stdout)["seconds"]


def timing_table(repeat: int) -> None:
    print(
        f"| mode | train s | page s (with live charts) | CLI `seconds` | CLI wall s | (median of {repeat}) |"
    )
    print("|---|---|---|---|---|---|")
    for mode in BALANCE_MODES:
        configs = [TrainConfig(balance=mode, seed=s) for s in range(repeat)]
        t_train = statistics.median(time_train(c) for c in configs)
        t_page = statistics.median(time_page(c) for c in configs)
        cli = [time_cli(mode, s) for s in range(repeat)]
        t_wall = statistics.median(w for w, _ in cli)
        t_cli = statistics.median(s for _, s in cli)
        print(f"| {mode} | {t_train:.2f} | {t_page:.2f} | {t_cli:.2f} | {t_wall:.2f} | |")


def sweep(seeds: int, extra: dict[str, dict]) -> None:
    """Issue 6's bars per setting (held-out load after training: collapsed = max share ≥ 0.5 or half
    dead; balanced = max share ≤ 2/E, none dead), beside the verdicts of the lesson's rule over the
    whole run; the loss ratio is the mean final loss over the collapsed run's."""
    print(
        "\n| setting | collapsed | balanced | verdicts by the rule (moe_core.collapse_verdict) "
        "| max share per seed | dead experts per seed | mean final loss | ratio to none |"
    )
    print("|---|---|---|---|---|---|---|---|")
    names = {"aux-loss": f"aux-loss α={TrainConfig.aux_coef:g} (default)"}
    settings = {names.get(mode, mode): {"balance": mode} for mode in BALANCE_MODES} | extra
    none_loss = None
    for name, kwargs in settings.items():
        results = [train(TrainConfig(seed=s, **kwargs)) for s in range(seeds)]
        maxes = " ".join(f"{r.stats.max_load:.2f}" for r in results)
        dead = " ".join(str(r.stats.dead_experts) for r in results)
        mean_loss = statistics.fmean(r.final_loss for r in results)
        none_loss = none_loss or mean_loss  # "none" comes first
        labels = [judge(r.history.load, r.history.loss).label for r in results]
        verdicts = ", ".join(f"{v} {labels.count(v)}" for v in VERDICTS if labels.count(v))
        print(
            f"| {name} | {sum(is_collapsed(r.stats) for r in results)}/{seeds} | "
            f"{sum(is_balanced(r.stats) for r in results)}/{seeds} | {verdicts} | {maxes} | {dead} "
            f"| {mean_loss:.3f} | {mean_loss / none_loss:.2f}x |"
        )


def comparison(seeds: int, repeat: int) -> None:
    """The page's comparison at the default settings (seeds 0..seeds-1 of every method): what the
    learner waits for with the shipped recording, and when it is recomputed on this server."""
    configs = [TrainConfig(balance=m, seed=s) for m in MODES for s in range(seeds)]

    def shown_from_recording() -> None:
        rows = recorded_rows(configs, load_recording())
        assert rows is not None, f"{RECORDED} does not hold these runs: run --record"
        sweep_table(rows, MODES)
        limit = 1.5 / configs[0].num_experts
        shares = {m: [r.end_top_share for r in rows if r.balance == m] for m in MODES}
        runs_charts.seed_sweep(shares, configs[0].num_experts, balanced=limit).to_json()

    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        shown_from_recording()
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    rows = [row_of(train(c)) for c in configs]  # as the page's worker: one run after another
    live = time.perf_counter() - start
    print(f"\n| {seeds}-seed comparison ({len(configs)} runs) | seconds |")
    print("|---|---|")
    print(f"| shown from the recording (median of {repeat}) | {statistics.median(times):.3f} |")
    print(f"| recomputed on this machine | {live:.1f} |")
    print("\n" + sweep_table(rows, MODES).to_string())


def record(seeds: int) -> None:
    """Train seeds 0..seeds-1 of every method at the default settings and write RECORDED."""
    import platform

    rows = [row_of(train(TrainConfig(balance=m, seed=s))) for m in MODES for s in range(seeds)]
    where = f"the course machine ({platform.machine()}, {os.cpu_count()} cores)"
    RECORDED.write_text(json.dumps(recording(rows, where, torch.__version__), indent=1) + "\n")
    print(f"wrote {len(rows)} runs to {RECORDED.relative_to(REPO)}")
    print(sweep_table(rows, MODES).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sweep", action="store_true", help="also run the 10-seed sweep")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--no-timing", action="store_true", help="skip the timing table")
    parser.add_argument("--comparison", action="store_true", help="time the page's five-seed comparison")
    parser.add_argument("--record", action="store_true", help="re-record the comparison the page ships")
    args = parser.parse_args()
    torch.set_num_threads(1)
    train(TrainConfig(steps=5))  # warm-up: first-call costs are not what we measure
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread; default run: {TrainConfig().steps} "
        f"steps, batch {TrainConfig().batch_size}, {TrainConfig().num_experts} experts\n"
    )
    if not args.no_timing:
        timing_table(args.repeat)
    if args.record:
        record(args.seeds)
    if args.comparison:
        comparison(5, args.repeat)
    if args.sweep:
        sweep(
            args.seeds,
            {
                "aux-loss α=0.01": {"balance": "aux-loss", "aux_coef": 0.01},
                "aux-loss α=0.1": {"balance": "aux-loss", "aux_coef": 0.1},
                "aux-loss α=0.3": {"balance": "aux-loss", "aux_coef": 0.3},
            },
        )


if __name__ == "__main__":
    main()
