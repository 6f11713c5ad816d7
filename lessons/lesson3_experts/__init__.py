"""Lesson 3 body: experts and sparse compute, drawn from the real `moe_core.dispatch` output.

A live batch (T tokens of two held-out sequences, code and prose, routed top-k by the first layer
of the course's language model; lessons.lesson3_experts.batch) feeds the hero (`render_hero`:
the whole dispatch in one picture, and the T slider, above the goals) and five panels in the
section order of `lessons/content/README.md`:

    dispatch_sort       slots in token order -> sorted into expert segments (counts, offsets)
    block_alignment     segments padded to BLOCK_M rows, one expert id per M-block
    grouped_gemm_tiles  the kernel's launch grid, and the GEMM of one chosen tile drawn as a diagram
    capacity_slider     capacity factor -> dropped slots, drop rate, load vs capacity
    live_benchmark      loop vs sorted torch vs Triton (lessons.lesson3_experts.bench), FLOPs, GPU results
    kernel_source       the Triton kernel's source beside its tiles (an optional deep dive, collapsed)

Before the block size, the capacity factor and the benchmark the learner predicts what will happen
(`lessons.course.predict`); the reveal is computed from the live result (`predictions.py`).
Every chart goes through `lessons.course.charts.show_chart` with a summary of what it shows now.

Each panel's live part is a keyed `st.fragment` (its box, prediction and fixed captions are drawn
by the page around it); a widget's callback reruns exactly the panels that use its value
(`st.rerun([...])`). Values live in the URL as `experts_*` via `lessons.course.url_state`.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import streamlit as st
import torch

from lessons.course.charts import show_chart
from lessons.course.predict import predict, reveal
from lessons.course.render import render_sections
from lessons.course.text import lesson_dir, read_text
from lessons.course.url_state import seed_numbers, write_url
from lessons.lesson3_experts import figures as charts
from lessons.lesson3_experts import predictions as pr
from lessons.lesson3_experts.batch import (
    BATCH_PANELS,
    BLOCKS,
    CAPACITY,
    DISPATCH,
    HERO,
    KERNEL,
    KERNEL_DIVE,
    TILES,
    batch_num_experts,
    batch_pairs,
    changed,
    example_batch,
    live_batch,
    live_dispatch,
    notices,
    plural,
    valid_rows,
)
from lessons.lesson3_experts.bench import BENCH_CHOICES, bench_panel
from lessons.lesson3_experts.kernel_view import kernel_panel
from moe_core.dispatch import Dispatch, apply_capacity, expert_capacity, sort_by_expert

# The tile diagram's inner dimension: the demo model's width D = 32, walked BLOCK_K = 16 at a time (the
# smallest tile tl.dot takes; TileConfig's default 32 would make the inner loop a single step).
BLOCK_K, INNER = 16, 32
# Optional reading, collapsed, and built only once opened: the kernel's listing and its panel cost
# every move of T, k or the block size a rerun nobody could see (bench/RESULTS.md).
DEEP_DIVES = {"reading_kernel": ("Optional deep dive: the Triton kernel's source, line by line", KERNEL_DIVE,
                                  ":material/code:")}
BLOCK_SIZES = (4, 8, 16, 32, 64)
WIDTHS, BLOCK_NS = (32, 64, 128, 256), (16, 32, 64)
GROUP_M = 8  # TileConfig's default: M-blocks per L2-friendly group of programs
NUMBERS = {  # key -> (default, lo, hi, integer); choices are clamped to the nearest allowed value
    "experts_tokens": (16, 4, 96, True),
    "experts_batch": (0, 0, 2, True),  # which pair of held-out passages (batch.batch_pairs)
    "experts_k": (2, 1, 4, True),
    "experts_block": (16, 4, 64, True),
    "experts_width": (128, 32, 256, True),
    "experts_block_n": (32, 16, 64, True),
    "experts_capacity": (2.0, 0.25, 3.0, False),  # start high: the prediction asks about lowering it
    "experts_tile": (0, 0, 999, True),
    "experts_program": (0, 0, 9999, True),
    "experts_bench_tokens": (64, 16, 1024, True),
    "experts_bench_experts": (8, 8, 64, True),
    "experts_bench_k": (2, 1, 4, True),
}
CHOICES = {"experts_block": BLOCK_SIZES, "experts_width": WIDTHS, "experts_block_n": BLOCK_NS,
           **BENCH_CHOICES}  # fmt: skip


def warm() -> None:
    """For lessons.course.warm_up: route the two held-out sequences every panel draws from."""
    example_batch()


def render_hero() -> None:
    """The live model first (above the goals): the whole dispatch of the live batch, one slider."""
    _init_state()
    intro = read_text(lesson_dir(3) / "hero.md")
    if intro:
        st.markdown(intro)
    hero_panel()


def render_body() -> None:
    _init_state()
    render_sections(3, {"dispatch_sort": dispatch_panel, "block_alignment": blocks_panel,
                        "grouped_gemm": tiles_panel, "capacity_dropping": capacity_panel,
                        "benchmark": bench_panel, "reading_kernel": kernel_panel},
                    deep_dives=DEEP_DIVES)  # fmt: skip


def _init_state() -> None:
    notices: dict[str, str] = st.session_state.setdefault("experts_notices", {})
    seed_numbers(notices, NUMBERS, CHOICES)


# --- panels ------------------------------------------------------------------------------------


# Each panel's fragment holds only what its widgets change: a move of T reruns five of them, and every
# element a rerun sends costs the server ~0.5 ms (building it, and handing the message to the event
# loop thread, which holds the GIL meanwhile; py-spy). The bordered box, the prediction and the
# fixed captions are drawn by the page around the fragment.


@st.fragment(key=HERO)
def hero_panel() -> None:
    pairs = batch_pairs()
    last = max(len(pairs) - 1, 0)  # the URL may name a pair this copy does not ship
    st.session_state["experts_batch"] = min(int(st.session_state.get("experts_batch", 0)), last)
    left, right = st.columns([3, 2])
    left.slider("tokens in the batch T", 4, 96, step=4, key="experts_tokens",
                on_change=changed, args=("experts_tokens", BATCH_PANELS))  # fmt: skip
    right.selectbox("The batch: held-out code + prose", range(len(pairs)), key="experts_batch",
                    format_func=lambda i: pairs[i], on_change=changed,
                    args=("experts_batch", BATCH_PANELS))  # fmt: skip
    notices("experts_tokens", "experts_batch")
    d, ids, labels = live_dispatch()
    n, n_pad, num_blocks = d.num_slots, d.num_padded_rows, d.block_expert_ids.numel()
    fig = charts.dispatch_overview(ids.flatten().tolist(), d.sorted_slot_ids.tolist(),
                                   d.block_expert_ids.tolist(), d.block_size, labels,
                                   batch_num_experts())  # fmt: skip
    summary = (f"{n} slots of {ids.shape[0]} tokens (k = {ids.shape[1]}) become {n_pad} kernel rows: "
               f"{num_blocks} M-blocks of {d.block_size} rows, {n_pad - n} of them padding "
               f"({(n_pad - n) / max(n_pad, 1):.0%}).")  # fmt: skip
    show_chart(fig, key="experts_hero_chart", summary=summary)
    write_url(experts_tokens=st.session_state["experts_tokens"],
              experts_batch=st.session_state["experts_batch"])


def dispatch_panel() -> None:
    with st.container(border=True):
        _dispatch_live()
        st.caption("After one sort, every expert's rows are contiguous.")


@st.fragment(key=DISPATCH)
def _dispatch_live() -> None:
    st.slider("experts per token k", 1, 4, key="experts_k", on_change=changed,
              args=("experts_k", BATCH_PANELS))  # fmt: skip
    notices("experts_k")
    words, ids, labels = live_batch()
    num_experts = batch_num_experts()
    sorted_slots, counts = sort_by_expert(ids, num_experts)
    fig = charts.dispatch_tracks(
        ids.flatten().tolist(),
        sorted_slots.tolist(),
        labels,
        num_experts,
        title=f"{ids.numel()} slots of {len(words)} tokens, by expert",
    )
    n_e = counts.tolist()
    busiest = max(range(num_experts), key=n_e.__getitem__)
    summary = (f"Expert segments after the sort: {', '.join(f'E{e} {c}' for e, c in enumerate(n_e))}; "
               f"E{busiest} is the busiest, {plural(n_e.count(0), 'expert')} empty.")  # fmt: skip
    offsets = np.concatenate([[0], np.cumsum(counts.numpy())]).tolist()

    def table() -> pd.DataFrame:
        return pd.DataFrame({"slots n_e": n_e, "offset o_e": offsets[:-1],
                             "rows": [f"{a}–{b - 1}" if b > a else "(empty)"
                                      for a, b in itertools.pairwise(offsets)]},
                            index=pd.Index([f"E{e}" for e in range(num_experts)], name="expert"))  # fmt: skip

    show_chart(fig, key="experts_dispatch_chart", summary=summary, data=table)
    # The counts and offsets in the notation of the section's worked example (one line that wraps on a
    # phone, where a table of E columns would scroll); the full table is behind the chart's expander.
    st.markdown(f"Counts $n = ({', '.join(map(str, n_e))})$, offsets "
                f"$o = ({', '.join(map(str, offsets))})$: expert $e$ owns rows $o_e$ to $o_{{e+1}} - 1$.")
    write_url(experts_k=st.session_state["experts_k"])


def blocks_panel() -> None:
    with st.container(border=True):
        _predict("padding_block")
        _blocks_live()
        st.caption("Padding costs the most when segments are short.")


@st.fragment(key=BLOCKS)
def _blocks_live() -> None:
    block = st.select_slider(
        "block size BLOCK_M (rows per M-block)",
        BLOCK_SIZES,
        key="experts_block",
        on_change=changed,
        args=("experts_block", [HERO, BLOCKS, TILES, KERNEL]),
    )
    notices("experts_block")
    d, ids, labels = live_dispatch()
    n, n_pad = d.num_slots, d.num_padded_rows
    title = f"{d.block_expert_ids.numel()} M-blocks of {block} rows"
    fig = charts.block_grid(
        d.sorted_slot_ids.tolist(),
        d.block_expert_ids.tolist(),
        block,
        n,
        labels,
        batch_num_experts(),
        title=title,
    )
    summary = (f"{d.block_expert_ids.numel()} M-blocks of {block} rows hold {n} real rows and "
               f"{n_pad - n} padding rows ({(n_pad - n) / max(n_pad, 1):.0%} of {n_pad}).")  # fmt: skip
    show_chart(fig, key="experts_blocks_chart", summary=summary)
    c = st.columns(2)
    c[0].metric("slots N", n)
    c[0].metric("padding", f"{(n_pad - n) / max(n_pad, 1):.0%}")
    c[1].metric("padded rows", n_pad)
    c[1].metric("bound N + E(B−1)", n + batch_num_experts() * (block - 1))
    if block < 16:
        st.caption(
            "Triton's `tl.dot` needs tiles of at least 16 rows, so the kernel itself uses "
            "BLOCK_M ≥ 16; smaller blocks are drawn only to show padding at a small scale."
        )
    if block == 64:  # the prediction's experiment: 16 -> 64
        counts = torch.bincount(ids.flatten(), minlength=batch_num_experts()).tolist()
        live = (f"On this batch: {pr.padded_rows(counts, 16) - n} padding rows at B = 16, "
                f"{pr.padded_rows(counts, 64) - n} at B = 64.")  # fmt: skip
        _reveal("padding_block", pr.padding_outcome(counts), live)
    write_url(experts_block=block)


def tiles_panel() -> None:
    with st.container(border=True):
        _tiles_live()
        st.caption("One launch covers every expert; each tile needs only its block's expert id.")


@st.fragment(key=TILES)
def _tiles_live() -> None:
    c1, c2 = st.columns(2)
    width = c1.select_slider("output columns of the GEMM (expert width F)", WIDTHS, key="experts_width",
                             help="The demo's experts have F = 32; wider experts need more N-blocks.",
                             on_change=changed, args=("experts_width", [TILES]))  # fmt: skip
    block_n = c2.select_slider("BLOCK_N (columns per tile)", BLOCK_NS, key="experts_block_n",
                               on_change=changed, args=("experts_block_n", [TILES]))  # fmt: skip
    notices("experts_width", "experts_block_n")
    d, _, _ = live_dispatch()
    num_m, num_n = d.block_expert_ids.numel(), -(-width // block_n)
    valid = valid_rows(d).tolist()
    title = "Launch grid: one program per tile"
    fig = charts.launch_grid(d.block_expert_ids.tolist(), valid, d.block_size, width, block_n, GROUP_M,
                             batch_num_experts(), title=title)  # fmt: skip
    busy = int((d.tokens_per_expert > 0).sum())
    programs = num_m * num_n
    show_chart(fig, key="experts_tiles_chart",
               summary=f"{programs} programs in one launch: {num_m} M-blocks × {num_n} N-blocks, "
                       f"each tile coloured by the one expert its M-block reads ({busy} experts have "
                       "rows).")  # fmt: skip
    st.markdown(f"**One launch of {programs} programs** ({num_m} M-blocks × {num_n} "
                f"N-blocks, grouped {GROUP_M} M-blocks at a time). A per-expert loop would instead "
                f"launch separate matrix multiplies for each of the {busy} experts that have tokens, "
                "and wait for each expert's row count first.")  # fmt: skip
    _gemm_diagram(d, valid, width, block_n)
    write_url(experts_width=width, experts_block_n=block_n)


def _gemm_diagram(d: Dispatch, valid: list[int], width: int, block_n: int) -> None:
    """One program's tile of the grouped GEMM as a picture: which rows of A, which expert's columns."""
    num_m, num_n = d.block_expert_ids.numel(), -(-width // block_n)
    if num_m == 0:
        return
    pids = charts.program_ids(num_m, num_n, GROUP_M)
    st.session_state["experts_program"] = min(int(st.session_state["experts_program"]), num_m * num_n - 1)
    pid = st.slider("program to follow (its number in the launch grid)", 0, max(num_m * num_n - 1, 1),
                    key="experts_program", disabled=num_m * num_n < 2, on_change=changed,
                    args=("experts_program", [TILES]))  # fmt: skip
    notices("experts_program")
    pid_m, pid_n = (int(i[0]) for i in np.nonzero(pids == pid))
    expert = int(d.block_expert_ids[pid_m])
    title = f"Program {pid}: one tile of C = A · W"
    fig = charts.gemm_tiles(d.block_expert_ids.tolist(), valid, d.block_size, width, block_n, INNER, BLOCK_K,
                            pid_m, pid_n, title=title)  # fmt: skip
    first, last = pid_n * block_n, min(width, (pid_n + 1) * block_n) - 1
    rows = plural(valid[pid_m], "real row")
    show_chart(fig, key="experts_gemm_chart",
               summary=f"Program {pid} computes tile ({pid_m}, {pid_n}): the {rows} of "
                       f"M-block {pid_m} times columns {first}–{last} of expert E{expert}'s weights, in "
                       f"{plural(-(-INNER // BLOCK_K), 'step')} of BLOCK_K = {BLOCK_K} along D = {INNER}.",
               )  # fmt: skip
    write_url(experts_program=pid)


def capacity_panel() -> None:
    with st.container(border=True):
        _predict("capacity_drop")
        _capacity_live()
        st.caption("Drops appear first on the busiest experts, and a larger CF buys fewer drops with more "
                   "padding.")  # fmt: skip


@st.fragment(key=CAPACITY)
def _capacity_live() -> None:
    cf = st.slider("capacity factor CF", 0.25, 3.0, step=0.05, key="experts_capacity",
                   on_change=changed, args=("experts_capacity", [CAPACITY]))  # fmt: skip
    notices("experts_capacity")
    words, ids, _ = live_batch()
    num_experts = batch_num_experts()
    cap = apply_capacity(ids, num_experts, cf)
    routed_e = torch.bincount(ids.flatten(), minlength=num_experts).tolist()
    kept_e = torch.bincount(ids[cap.keep], minlength=num_experts).tolist()
    fig = charts.capacity_bars(routed_e, kept_e, cap.capacity,
                               title=f"C = ⌈{cf:g} · {len(words)} · {ids.shape[1]} / "
                                     f"{num_experts}⌉ = {cap.capacity} slots per expert")  # fmt: skip
    dropped_e = [r - k for r, k in zip(routed_e, kept_e, strict=True)]
    over = [f"E{e} ({d})" for e, d in enumerate(dropped_e) if d > 0]
    summary = (f"Capacity C = {cap.capacity} slots per expert: {cap.num_dropped} of {ids.numel()} slots "
               f"dropped" + (f", from {', '.join(over)}." if over else "."))  # fmt: skip

    def data() -> pd.DataFrame:
        return pd.DataFrame({"routed": routed_e, "kept": kept_e, "dropped": dropped_e},
                            index=pd.Index([f"E{e}" for e in range(num_experts)], name="expert"))  # fmt: skip

    show_chart(fig, key="experts_capacity_chart", summary=summary, data=data)
    c = st.columns(3)
    c[0].metric("dropped slots", f"{cap.num_dropped} of {ids.numel()}")
    c[1].metric("drop rate", f"{cap.drop_rate:.1%}")
    c[2].metric(
        "buffer rows E·C",
        num_experts * cap.capacity,
        help="Rows the fixed buffers hold; those not filled by kept slots are padding.",
    )
    dropped = torch.nonzero(~cap.keep)
    if dropped.numel():
        rows = [{"token": int(t), "word": words[t], "choice": int(j) + 1, "expert": f"E{int(ids[t, j])}"}
                for t, j in dropped.tolist()]  # fmt: skip
        st.dataframe(pd.DataFrame(rows), hide_index=True, height=min(36 * len(rows) + 38, 250))
    if cf <= 1.0 + 1e-9:  # the prediction's experiment: CF lowered from 2.0 to 1.0
        _reveal("capacity_drop", pr.capacity_outcome(routed_e, len(words), ids.shape[1]),
                _first_drop_text(routed_e, len(words), ids.shape[1]))  # fmt: skip
    write_url(experts_capacity=round(cf, 2))


def _first_drop_text(counts: list[int], tokens: int, top_k: int) -> str:
    at, over = pr.first_droppers(counts, tokens, top_k)
    if at is None:
        return "On this batch no expert drops a slot anywhere between CF = 2.0 and 1.0."
    names = ", ".join(f"E{e} ({counts[e]} slots)" for e in over)
    return (f"On this batch the first drop came at CF = {at:g} (C = "
            f"{expert_capacity(tokens, top_k, len(counts), at)}), on {names}; the busiest expert has "
            f"{max(counts)} slots.")  # fmt: skip


# --- predict, then try -------------------------------------------------------------------------


def _predict(key: str) -> None:
    """The prediction question of `key` (text from lessons/content/lesson3/predict_<key>.md)."""
    p = pr.load_prediction(key)
    if p is not None:
        predict(3, key, p.question, p.options)


def _reveal(key: str, outcome: int, live: str) -> None:
    """Whether the learner's prediction held, from the live outcome (an index into the options)."""
    p = pr.load_prediction(key)
    if p is not None:
        reveal(3, key, p.options[outcome], f"{p.why}\n\n{live}")
