"""Lesson 4's drawing helpers: charts and readouts of one run, the cause of a collapse, summaries.

Kept apart from the lesson's `__init__.py` (which wires widgets, jobs and fragments) so each
file stays one read. Everything shown is computed from the run itself: the loads the trainer recorded per
step, the held-out evaluation, and the trained router's weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import streamlit as st
import torch

from lessons.course.charts import show_chart
from lessons.lesson4_balancing import figures as charts
from lessons.lesson4_balancing import figures_runs as runs_charts
from lessons.lesson4_balancing.sweep import SweepRow, sweep_table
from moe_core.collapse_verdict import BALANCED_SHARE, SPIKE_FACTOR, Verdict, judge
from moe_core.data import make_task
from moe_core.metrics import DEAD_FRACTION
from moe_core.train import TrainResult

WINDOW = 10  # steps averaged for the live load bars (one batch alone is noisy)


def _mean_load(loads: Sequence[Sequence[float]]) -> list[float]:
    window = loads[-WINDOW:]
    return [sum(col) / len(window) for col in zip(*window, strict=True)]


def _dead(load: Sequence[float]) -> int:
    return sum(v < DEAD_FRACTION / len(load) for v in load)


def summarise_load(load: Sequence[float]) -> str:
    top = max(range(len(load)), key=load.__getitem__)
    return (
        f"Expert E{top} has the largest share, {load[top]:.2f} (fair share 1/{len(load)} = "
        f"{1 / len(load):.3f}); {_dead(load)} of {len(load)} experts are dead."
    )


def load_table(load: Sequence[float]) -> pd.DataFrame:
    return pd.DataFrame({"expert": [f"E{e}" for e in range(len(load))], "share": [round(v, 4) for v in load]})


def run_charts(
    loads: Sequence[Sequence[float]],
    losses: Sequence[float],
    *,
    prefix: str,
    total: int,
    at_step: int | None = None,
    verdict: Verdict | None = None,
    switch_step: int | None = None,
) -> None:
    """Load over time and the task loss of a run (training or finished), with what the verdict rule
    found marked on them (collapse stretches shaded, spikes crossed) and the replay step."""
    n = len(loads)
    spans = verdict.collapse_spans if verdict else ()
    spikes = verdict.spikes if verdict else ()
    show_chart(
        charts.load_over_time(
            loads,
            total_steps=total,
            switch_step=switch_step,
            collapse_spans=spans,
            at_step=at_step,
            title="Load over time (share of each batch's slots)",
            height=280,
        ),
        key=f"{prefix}_time",
        summary=f"Each expert's share of every batch for steps 1–{n}"
        + (
            "; the outlined bar along the top marks a collapse by the verdict rule (steps "
            + ", ".join(f"{a}–{b}" for a, b in spans)
            + ")"
            if spans
            else "; no collapse by the verdict rule"
        )
        + ".",
    )
    show_chart(
        charts.loss_curve(
            {"task loss": losses},
            total_steps=total,
            switch_step=switch_step,
            spikes=spikes,
            at_step=at_step,
            title="Task loss",
            height=240,
        ),
        key=f"{prefix}_loss",
        summary=f"Task loss per step, from {losses[0]:.3f} at step 1 to {losses[-1]:.3f} at step {n}"
        + (f"; {len(spikes)} step(s) spiked above {SPIKE_FACTOR:g}× the running minimum" if spikes else "")
        + ".",
    )


def final_figures(result: TrainResult, *, prefix: str, switch_step: int | None = None) -> None:
    """A finished run (the recovery experiment): held-out readouts, load bars and both curves."""
    s = result.stats
    c1, c2, c3 = st.columns(3)
    c1.metric("Max expert share", f"{s.max_load:.2f}", help="held-out batch of 2048 tokens")
    c2.metric("Dead experts", f"{s.dead_experts} of {len(s.load)}", help="under a tenth of a fair share")
    c3.metric("Task loss (MSE)", f"{result.final_loss:.3f}", help="held-out batch")
    show_chart(
        charts.load_bars(s.load, title=f"Expert load after {result.step} steps (held-out tokens)"),
        key=f"{prefix}_bars",
        summary=summarise_load(s.load),
        data=load_table(s.load),
    )
    h = result.history
    run_charts(h.load, h.loss, prefix=prefix, total=len(h.load), switch_step=switch_step)


def metrics_row(result: TrainResult) -> None:
    s = result.stats
    cols = st.columns(4)
    cols[0].metric("MaxVio", f"{s.max_vio:.2f}", help="E · max share − 1; 0 when balanced")
    cols[1].metric(
        "CV of counts",
        f"{s.cv:.2f}",
        help=f"0 when balanced, √(E−1) = {(len(s.load) - 1) ** 0.5:.2f} for total collapse",
    )
    cols[2].metric("Routing entropy", f"{s.entropy:.2f}", help="of the load, divided by log E: 1 = even")
    cols[3].metric(
        "Token entropy",
        f"{result.token_entropy:.2f} nats",
        help="mean entropy of one token's router scores: low = a confident router",
    )
    if result.config.capacity_factor:
        st.caption(
            f"Capacity factor {result.config.capacity_factor:g}: {result.drop_rate:.1%} of the held-out "
            "slots were dropped."
        )


def shared_direction(result: TrainResult) -> tuple[int, float, float]:
    """(busiest expert, cosine of its gate row (minus the mean row) with the shared input shift,
    the logit lead that shift alone gives it on every token)."""
    gate = result.state.model["gate.weight"]  # [E, D]
    task = make_task(result.config.num_domains, result.config.hidden_size, result.state.seed)
    winner = int(torch.tensor(result.stats.load).argmax())
    lead = gate[winner] - gate.mean(0)
    cosine = float(lead @ task.shift / (lead.norm() * task.shift.norm()).clamp_min(1e-12))
    return winner, cosine, float(lead @ task.shift)


def _takeover_step(result: TrainResult, expert: int) -> int | None:
    loads = result.history.load
    for t in range(len(loads)):
        window = loads[max(0, t - WINDOW + 1) : t + 1]
        if sum(row[expert] for row in window) / len(window) >= 0.5:
            return t + 1
    return None


def _rival(result: TrainResult, winner: int) -> tuple[int, float, int] | None:
    """(expert, peak share, step) of another expert that led for a while with ≥ 40% of the batches."""
    loads = result.history.load
    best: tuple[int, float, int] | None = None
    for t in range(WINDOW, len(loads) + 1):
        mean = _mean_load(loads[:t])
        leader = max(range(len(mean)), key=mean.__getitem__)
        if leader != winner and mean[leader] >= 0.4 and (best is None or mean[leader] > best[1]):
            best = (leader, mean[leader], t)
    return best


def explain_run(result: TrainResult) -> str:
    """What this run shows, and why, in numbers from the run itself."""
    s, cfg = result.stats, result.config
    winner, cosine, lead = shared_direction(result)
    rand = 1 / cfg.hidden_size**0.5
    verdict = judge(result.history.load, result.history.loss)
    if verdict.load == "collapsed":
        when = _takeover_step(result, winner)
        took = f"by step {when} it had half of every batch, and " if when else ""
        rival = _rival(result, winner)
        race = (
            f" E{rival[0]} led first (a {rival[1]:.0%} share around step {rival[2]}) until E{winner} "
            f"overtook it: the loop crowns whichever expert pulls ahead, not always the first."
            if rival
            else ""
        )
        head = (
            f"**What happened: collapse.** Expert E{winner} won: {took}now it gets {s.max_load:.0%} of "
            f"the tokens and {s.dead_experts} of {len(s.load)} experts are dead. "
        )
        if cosine < 2 * rand:  # several experts split the tokens; none of them owns the shared shift
            return head + (
                f"**Why:** no single expert won the shared part this time (E{winner}'s gate row has "
                f"cosine {cosine:.2f} with the shared shift; a random direction in {cfg.hidden_size} "
                f"dimensions gives about ±{rand:.2f}). A few early leaders each kept the tokens they "
                f"started with, and the experts they starved got no tokens, so no gradient, and never "
                f"caught up.{race}"
            )
        return head + (
            f"**Why:** every token carries the same shift and every domain's target the same shared map. "
            f"E{winner} fitted that shared part best, so the task gradient raised its score along the "
            f"shared shift, for *every* token. Its gate row now points along that shift (cosine "
            f"{cosine:.2f}; a random direction in {cfg.hidden_size} dimensions gives about ±{rand:.2f}), "
            f"which alone lifts its logit by {lead:+.1f} on every token. The experts it starved got no "
            f"tokens, so no gradient, and never caught up.{race}"
        )
    how = {
        "aux-loss": f"the auxiliary loss (α = {cfg.aux_coef:g}) pushed probability away from busy experts",
        "aux-free": "after every step the bias of busy experts went down and that of idle ones up",
        "none": "nothing balanced it, yet this seed's shared direction did not win",
    }[cfg.balance]
    state = "stayed balanced" if verdict.load == "balanced" else "is uneven but did not collapse"
    kept = "balancing kept every expert in use" if cfg.balance != "none" else "the others kept their tokens"
    owner = (
        f"The busiest expert's gate row has cosine {cosine:.2f} with the shared shift, so no expert owns the "
        f"shared part: compare a collapsed run, where that cosine is large."
        if cosine < 2 * rand  # 2x what a random direction gives
        else f"The busiest expert's gate row has cosine {cosine:.2f} with the shared shift: it learned to "
        f"key on the shared part, as a collapse's winner does, yet {kept}."
    )
    return (
        f"**What happened: the load {state}** (max share {s.max_load:.2f}, {s.dead_experts} dead): {how}. "
        f"{owner} The heatmap shows where each domain went instead."
    )


def recovery_summary(before: TrainResult | None, after: TrainResult, switch_step: int) -> None:
    if before is None:
        return
    b, a = before.stats, after.stats
    came_back = b.dead_experts - a.dead_experts
    verb = f"{came_back} came back" if came_back > 0 else "none came back"
    st.markdown(
        f"**At the switch (step {switch_step})** {b.dead_experts} of {len(b.load)} experts were dead "
        f"(max share {b.max_load:.2f}, loss {before.final_loss:.3f}). **At the end (step {after.step})** "
        f"{a.dead_experts} are dead (max share {a.max_load:.2f}, loss {after.final_loss:.3f}): {verb}."
    )


def compare_table(runs: Mapping[str, TrainResult]) -> pd.DataFrame:
    """One row per run: the numbers to compare two runs of the same seed."""
    rows = {
        label: {
            "max share": round(r.stats.max_load, 2),
            "dead": r.stats.dead_experts,
            "MaxVio": round(r.stats.max_vio, 2),
            "CV": round(r.stats.cv, 2),
            "routing entropy": round(r.stats.entropy, 2),
            "task loss": round(r.final_loss, 3),
        }
        for label, r in runs.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def sweep_summary(rows: Sequence[SweepRow], modes: Mapping[str, str], num_experts: int) -> None:
    table = sweep_table(rows, modes)
    shares = {label: [r.end_top_share for r in rows if r.balance == mode] for mode, label in modes.items()}
    seeds = {label: [r.seed for r in rows if r.balance == mode] for mode, label in modes.items()}
    first = next(iter(seeds.values()))
    show_chart(
        runs_charts.seed_sweep(
            shares,
            num_experts,
            balanced=BALANCED_SHARE / num_experts,
            seeds=first,
            title="Top expert share at the end of every seed's run",
        ),
        key="balance_sweep_chart",
        summary="Per method, the top expert's share over the last tenth of each run: "
        + "; ".join(f"{label} {min(v):.2f}–{max(v):.2f}" for label, v in shares.items() if v)
        + f" (balanced ≤ {BALANCED_SHARE:g}/{num_experts}).",
        data=table,
    )
    st.dataframe(table)
    st.caption(
        "Verdicts by the rule stated above the charts: the whole run is judged, not only its last step. "
        "Balancing methods differ in how reliably they balance, and in what they do to the loss."
    )
