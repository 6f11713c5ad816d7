"""Lesson 1's measured claim, on the course's own models: the MoE language model beside a dense
model with its active parameters and one with about its total, all three trained here on the same
1.6 million tokens in the same order (moe_core/weights/lm/comparison.json, `python -m moe_core
compare-lm`).

Every number the learner reads here (in the table, the captions and the reveal) is computed from
that file as the page draws, so the text cannot drift from the measurement.
"""

from __future__ import annotations

from functools import cache

import pandas as pd
import streamlit as st

from lessons.course.charts import show_chart
from lessons.course.predict import predict, reveal
from lessons.course.url_state import show_notices, url_choice, url_number, write_url
from lessons.lesson1_what_is_moe.figures import smooth, training_curves
from moe_core.lm.comparison import COMPARISON_LONG, load_comparison

SHOWN = ("moe", "dense_active", "dense_total")  # (d), no balancing, is Lesson 4's
NAMES = {"moe": "(a) MoE", "dense_active": "(b) small dense", "dense_total": "(c) big dense"}
AXES = ("tokens read", "training time")
VIEWS = ("gap to (b)", "loss")
GAP_HELP = "Each model's loss minus the small dense model's on the same batch. Below 0 = better than (b)."
AXIS_KEY, WINDOW_KEY, VIEW_KEY = "intro_budget_axis", "intro_budget_window", "intro_budget_view"
DEFAULT_WINDOW, MAX_WINDOW = 25, 100
OUTCOMES = ("Below both dense models", "Between the two dense models", "Level with the small dense model",
            "Above both dense models")  # fmt: skip
GENRES = ("code", "prose")


@cache
def comparison() -> dict | None:
    """The shipped comparison, or None when the file is missing or unreadable (a notice is shown)."""
    try:
        data = load_comparison()
    except (OSError, ValueError):
        return None
    return data if all(name in data.get("runs", {}) for name in SHOWN) else None


@cache
def longer_run() -> dict | None:
    """(a) and (b) trained three times as long, or None when that file is missing."""
    try:
        data = load_comparison(COMPARISON_LONG)
    except (OSError, ValueError):
        return None
    return data if all(name in data.get("runs", {}) for name in SHOWN[:2]) else None


def lead(runs: dict, genre: str) -> float:
    """Bits per byte by which the MoE beats the small dense model on held-out `genre` text."""
    return runs["dense_active"]["heldout_bpb"][genre] - runs["moe"]["heldout_bpb"][genre]


def mean_bpb(run: dict) -> float:
    """Code and prose weighted equally: the two genres the lessons compare."""
    return sum(run["heldout_bpb"][g] for g in GENRES) / len(GENRES)


def outcome(runs: dict) -> str:
    """Which of OUTCOMES the MoE's held-out bits per byte (both genres, equally weighted) is.

    "Level with" means within 0.002 bits per byte of the small dense model, the size of the
    difference between two trainings of the same recipe that can still hide in rounding."""
    moe, small, big = (mean_bpb(runs[k]) for k in SHOWN)
    if abs(moe - small) < 0.002:
        return OUTCOMES[2]
    if moe < min(small, big):
        return OUTCOMES[0]
    if moe > max(small, big):
        return OUTCOMES[3]
    return OUTCOMES[1]


def share_of_gap(runs: dict, genre: str) -> float:
    """How much of the big dense model's lead over the small one the MoE recovers, on `genre`:
    0 = no better than the small dense model, 1 = as good as the big one."""
    moe, small, big = (runs[k]["heldout_bpb"][genre] for k in SHOWN)
    return (small - moe) / (small - big) if small != big else float("nan")


def results_table(runs: dict) -> pd.DataFrame:
    rows = []
    for name in SHOWN:
        run = runs[name]
        rows.append({
            "model": NAMES[name],
            "stored": f"{run['params_total'] / 1e6:.2f}M",
            "per token": f"{run['params_active'] / 1e6:.2f}M",
            "bits/byte, code": f"{run['heldout_bpb']['code']:.3f}",
            "bits/byte, prose": f"{run['heldout_bpb']['prose']:.3f}",
            "training": f"{run['train_seconds'] / 60:.1f} min",
        })  # fmt: skip
    return pd.DataFrame(rows)


def loss_curves(data: dict, window: int, *, gap: bool, by_time: bool) -> dict[str, tuple[list, list]]:
    """{name: (x, y)} for the chart: smoothed training loss, or its gap to the small dense model
    (the same batch at every step, so the gap is the models' difference, not the data's)."""
    runs = data["runs"]
    reference = smooth(runs["dense_active"]["loss"], window)
    curves = {}
    for key in SHOWN if not gap else ("moe", "dense_total"):
        run = runs[key]
        y = smooth(run["loss"], window)
        if gap:
            y = [a - b for a, b in zip(y, reference, strict=True)]
        millions = data["tokens"] / data["steps"] / 1e6  # tokens per step, in millions
        x = [s / 60 for s in run["seconds"]] if by_time else [(i + 1) * millions for i in range(len(y))]
        curves[NAMES[key]] = (x, y)
    return curves


def _seed_widgets() -> None:
    if AXIS_KEY in st.session_state:
        return
    axis = url_choice(AXIS_KEY, AXES[0], AXES)
    view = url_choice(VIEW_KEY, VIEWS[0], VIEWS)
    window = url_number(WINDOW_KEY, DEFAULT_WINDOW, 1, MAX_WINDOW)
    st.session_state[AXIS_KEY], st.session_state[VIEW_KEY] = axis.value, view.value
    st.session_state[WINDOW_KEY] = int(window.value)
    show_notices(axis, view, window)


@st.fragment
def render_same_budget() -> None:
    data = comparison()
    if data is None:
        st.info("The recorded comparison (moe_core/weights/lm/comparison.json) is missing or unreadable; "
                "`python -m moe_core compare-lm` rebuilds it.", icon=":material/info:")  # fmt: skip
        return
    runs = data["runs"]
    predict(1, "same_budget", "The MoE below does the arithmetic of the **small** dense model for every "
            "token, and stores about as many weights as the **big** one. All three read the same text. "
            "Where does the MoE's held-out loss land?", OUTCOMES)  # fmt: skip
    _seed_widgets()
    with st.container(border=True):
        left, middle, right = st.columns([1, 1, 2])
        view = left.segmented_control("Show", VIEWS, key=VIEW_KEY, required=True, help=GAP_HELP)
        axis = middle.segmented_control("Plot against", AXES, key=AXIS_KEY, required=True)
        window = right.slider("Smoothing: mean of the last n steps", 1, MAX_WINDOW, key=WINDOW_KEY,
                              help="One step's loss is one batch's: noisy. 1 shows it raw.")  # fmt: skip
        curves = loss_curves(data, window, gap=view == VIEWS[0], by_time=axis == AXES[1])
        ends = ", ".join(f"{label} {y[-1]:+.3f}" if view == VIEWS[0] else f"{label} {y[-1]:.2f}"
                         for label, (_, y) in curves.items())  # fmt: skip
        what = "Training loss minus (b)'s" if view == VIEWS[0] else "Training loss"
        x_title = "training time (minutes)" if axis == AXES[1] else "tokens read (millions)"
        y_title = "loss minus (b)'s (nats per token)" if view == VIEWS[0] else None
        show_chart(
            training_curves(curves, x_title=x_title, y_title=y_title,
                            title=f"{what}, {data['steps']} steps of the same batches"),
            key="intro_budget_chart",
            summary=f"{what} (mean of the last {window} steps) against "
            f"{'training minutes' if axis == AXES[1] else 'millions of tokens'}; at the end: {ends}.",
        )  # fmt: skip
        st.dataframe(results_table(runs), hide_index=True)
        small, big = runs["dense_active"], runs["dense_total"]
        st.caption(
            f"Held-out text the models never trained on: {share_of_gap(runs, 'code'):.0%} (code) and "
            f"{share_of_gap(runs, 'prose'):.0%} (prose) of the big dense model's lead over the small one "
            f"is recovered by the MoE, at the small one's compute per token. The big dense model took "
            f"{big['train_seconds'] / small['train_seconds']:.1f}× the small one's training time. "
            f"Times: {data['where'] or 'this machine'}."
        )
        longer = longer_run()
        if longer:
            st.caption(
                f"Trained three times as long ({longer['tokens'] / 1e6:.1f}M tokens; (a) and (b) only), the "
                f"MoE's lead over the small dense model grows from {lead(runs, 'code'):.3f} to "
                f"{lead(longer['runs'], 'code'):.3f} bits/byte on code and from {lead(runs, 'prose'):.3f} to "
                f"{lead(longer['runs'], 'prose'):.3f} on prose."
            )
        write_url(**{VIEW_KEY: view, AXIS_KEY: axis, WINDOW_KEY: window})
    _reveal(runs)


def _reveal(runs: dict) -> None:
    moe, small = runs["moe"], runs["dense_active"]
    # A second training of run (a)'s recipe and seed (resumed in slices): the two differ by noise alone.
    noise = moe.get("repeat_heldout_bpb")
    noise_note = (
        " For scale: a second training of run (a), same recipe and seed, landed "
        + " and ".join(f"{abs(noise[g] - moe['heldout_bpb'][g]):.3f}" for g in GENRES)
        + " bits/byte away on code and prose: differences of that size are noise."
        if noise else ""
    )
    reveal(1, "same_budget", outcome(runs),
           f"The MoE's held-out bits per byte are {moe['heldout_bpb']['code']:.3f} (code) and "
           f"{moe['heldout_bpb']['prose']:.3f} (prose), against {small['heldout_bpb']['code']:.3f} and "
           f"{small['heldout_bpb']['prose']:.3f} for the dense model with the same compute per token."
           + noise_note)  # fmt: skip
