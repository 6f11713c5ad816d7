"""Collapse in a real language model: the course's MoE LM trained twice on the same batches, once
with the Switch auxiliary loss (the shipped recipe, alpha = 0.01) and once with no balancing at all
(moe_core/weights/lm/comparison.json, runs "moe" and "no_balancing").

The toy above trains in a second; this is the recorded evidence that the same thing happens in a
transformer trained on real text. Each layer is judged by the page's one rule
(moe_core.collapse_verdict) on its recorded expert shares, so the words shown come from the same
numbers as the charts.
"""

from __future__ import annotations

import bisect
from functools import cache

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lessons.course.charts import show_chart
from lessons.course.url_state import show_notices, url_number, write_url
from lessons.lesson4_balancing.figures import load_bars, load_over_time
from moe_core.collapse_verdict import BALANCED_SHARE, Verdict, judge
from moe_core.lm.comparison import load_comparison

RUNS = {"no_balancing": "no balancing", "moe": "Switch auxiliary loss"}
LAYER_KEY = "balance_lm_layer"


@cache
def recorded() -> dict | None:
    """The two runs, or None when the shipped comparison is missing or lacks them."""
    try:
        runs = load_comparison()["runs"]
    except (OSError, ValueError, KeyError):
        return None
    if not all(name in runs and runs[name]["expert_share"] for name in RUNS):
        return None
    return {name: runs[name] for name in RUNS}


def per_step_shares(run: dict, layer: int) -> list[list[float]]:
    """[S][E] shares of `layer` for steps 1..S: each step takes the latest recorded point (the
    run records every few steps), so the page's rule reads steps as it does for the toy."""
    steps = run["share_steps"]
    points = run["expert_share"]
    return [points[bisect.bisect_right(steps, s) - 1][layer] for s in range(1, run["steps"] + 1)]


@cache
def verdict(name: str, layer: int) -> Verdict:
    run = recorded()[name]
    return judge(per_step_shares(run, layer), run["loss"])


@cache
def layer_view(name: str, layer: int) -> tuple[go.Figure, go.Figure, list[float]]:
    """Both figures of one run's layer (index `layer`) and its end shares. The data is a shipped
    recording, so they are built once per process and shared (show_chart copies, never mutates)."""
    run, v = recorded()[name], verdict(name, layer)
    label, shares = RUNS[name], end_shares(run, layer)
    first, points = run["share_steps"][-10], len(run["share_steps"][-10:])
    over_time = load_over_time(per_step_shares(run, layer), collapse_spans=v.collapse_spans,
                               title=f"{label}: layer {layer + 1}, share per expert")  # fmt: skip
    bars = load_bars(shares, balanced=BALANCED_SHARE / len(shares),
                     title=f"{label}: steps {first}–{run['steps']}, mean of {points} batches")  # fmt: skip
    return over_time, bars, shares


def end_shares(run: dict, layer: int, points: int = 10) -> list[float]:
    """Mean share per expert over the last `points` recorded steps."""
    last = [p[layer] for p in run["expert_share"][-points:]]
    return [sum(col) / len(last) for col in zip(*last, strict=True)]


def layer_table(runs: dict) -> pd.DataFrame:
    layers = len(next(iter(runs.values()))["expert_share"][0])
    rows = {}
    for name, label in RUNS.items():
        for layer in range(layers):
            v = verdict(name, layer)
            rows[(label, f"layer {layer + 1}")] = {"verdict": v.label,
                                                   "busiest expert, end": f"{v.end_top_share:.2f}",
                                                   "dead experts, end": v.end_dead}  # fmt: skip
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.names = ["balancing", "layer"]
    return table


@st.fragment
def render_real_lm() -> None:
    runs = recorded()
    if runs is None:
        st.info("The recorded language-model runs (moe_core/weights/lm/comparison.json) are missing; "
                "`python -m moe_core compare-lm` rebuilds them.", icon=":material/info:")  # fmt: skip
        return
    layers = len(runs["moe"]["expert_share"][0])
    if LAYER_KEY not in st.session_state:
        from_url = url_number(LAYER_KEY, 3, 1, layers)
        st.session_state[LAYER_KEY] = int(from_url.value)
        show_notices(from_url)
    with st.container(border=True):
        layer = st.segmented_control("Layer", list(range(1, layers + 1)), key=LAYER_KEY, required=True,
                                     format_func=lambda n: f"layer {n}")  # fmt: skip
        index = int(layer) - 1
        cols = st.columns(2)
        for col, (name, label) in zip(cols, RUNS.items(), strict=True):
            v = verdict(name, index)
            over_time, bars, shares = layer_view(name, index)
            with col:
                show_chart(
                    over_time,
                    key=f"balance_lm_time_{name}",
                    summary=f"{label}, layer {layer}: verdict {v.label}; at the end the busiest expert "
                    f"holds {v.end_top_share:.2f} of the routed slots and {v.end_dead} of {len(shares)} "
                    "experts are dead.",
                )  # fmt: skip
                show_chart(
                    bars,
                    key=f"balance_lm_bars_{name}",
                    summary="Mean share per expert at the end: "
                    + ", ".join(f"E{e} {s:.2f}" for e, s in enumerate(shares)) + ".",
                )  # fmt: skip
        st.dataframe(layer_table(runs))
        free, aux = runs["no_balancing"], runs["moe"]
        st.caption(
            f"Same {free['steps']} steps, same batches. Held-out bits per byte without balancing: "
            f"{free['heldout_bpb']['code']:.3f} (code), {free['heldout_bpb']['prose']:.3f} (prose); with the "
            f"auxiliary loss: {aux['heldout_bpb']['code']:.3f} and {aux['heldout_bpb']['prose']:.3f}."
        )
        write_url(**{LAYER_KEY: int(layer)})
