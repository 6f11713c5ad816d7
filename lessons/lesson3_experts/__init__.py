"""Lesson 3 body: experts and sparse compute, drawn from the real `moe_core.dispatch` output.

A live batch (the first T tokens of Lesson 2's example sentences, routed top-k by the trained
router demo) feeds five panels in the section order of `lessons/content/README.md`:

    dispatch_sort       slots in token order -> sorted into expert segments (counts, offsets)
    block_alignment     segments padded to BLOCK_M rows, one expert id per M-block
    grouped_gemm_tiles  the kernel's launch grid, tiles coloured by their M-block's expert
    capacity_slider     capacity factor -> dropped slots, drop rate, load vs capacity
    live_benchmark      loop vs sorted torch vs Triton (lessons.lesson3_experts.bench), FLOPs, GPU results
    kernel_source       the Triton kernel's source beside its tiles, the segment lookup explained

Each panel is a keyed `st.fragment`; a widget's callback reruns exactly the panels that use its
value (`st.rerun([...])`). Values live in the URL as `experts_*` via `lessons.course.url_state`.
"""

from __future__ import annotations

import ast
import itertools
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
import torch

import moe_core.kernels
from lessons.course.models import get_model
from lessons.course.render import render_sections
from lessons.course.url_state import forget_notice_and_rerun, seed_numbers, show_stored_notices, write_url
from lessons.lesson3_experts import figures as charts
from lessons.lesson3_experts.bench import BENCH_CHOICES, bench_panel
from moe_core.dispatch import Dispatch, align_block_size, apply_capacity, sort_by_expert
from moe_core.router import softmax_topk
from moe_core.text_data import EXAMPLES

DISPATCH, BLOCKS, TILES, CAPACITY = "experts_dispatch", "experts_blocks", "experts_tiles", "experts_capacity"
KERNEL = "experts_kernel"
BLOCK_SIZES = (4, 8, 16, 32, 64)
WIDTHS, BLOCK_NS = (32, 64, 128, 256), (16, 32, 64)
GROUP_M = 8  # TileConfig's default: M-blocks per L2-friendly group of programs
NUMBERS = {  # key -> (default, lo, hi, integer); choices are clamped to the nearest allowed value
    "experts_tokens": (16, 4, 96, True),
    "experts_k": (2, 1, 4, True),
    "experts_block": (16, 4, 64, True),
    "experts_width": (128, 32, 256, True),
    "experts_block_n": (32, 16, 64, True),
    "experts_capacity": (1.0, 0.25, 3.0, False),
    "experts_tile": (0, 0, 999, True),
    "experts_bench_tokens": (64, 16, 1024, True),
    "experts_bench_experts": (8, 8, 64, True),
    "experts_bench_k": (2, 1, 4, True),
}
CHOICES = {"experts_block": BLOCK_SIZES, "experts_width": WIDTHS, "experts_block_n": BLOCK_NS,
           **BENCH_CHOICES}  # fmt: skip


def render_body() -> None:
    _init_state()
    render_sections(3, {"dispatch_sort": dispatch_panel, "block_alignment": blocks_panel,
                        "grouped_gemm": tiles_panel, "capacity_dropping": capacity_panel,
                        "benchmark": bench_panel, "reading_kernel": kernel_panel})  # fmt: skip


def _init_state() -> None:
    notices: dict[str, str] = st.session_state.setdefault("experts_notices", {})
    seed_numbers(notices, NUMBERS, CHOICES)


def _notices(*keys: str) -> None:
    show_stored_notices("experts_notices", *keys)


def _changed(key: str, panels: list[str]) -> None:
    forget_notice_and_rerun("experts_notices", key, panels)


# --- the live batch --------------------------------------------------------------------------


@st.cache_data(max_entries=1, show_spinner=False)
def _example_batch() -> tuple[list[str], np.ndarray]:
    """Words and router logits [T, E] of all example sentences, each encoded in its own context."""
    model = get_model()
    words, logits = [], []
    with torch.no_grad():
        for sentence in EXAMPLES.values():
            w, _, x_TD = model.sentence_hidden(sentence)
            words += w
            logits.append(model.moe.router.gate(x_TD))
    return words, torch.cat(logits).numpy()


def _batch() -> tuple[list[str], torch.Tensor, list[str]]:
    """Words [T], topk_ids [T, K] and a label per slot, for the current T and k."""
    tokens, top_k = int(st.session_state["experts_tokens"]), int(st.session_state["experts_k"])
    words, logits = _example_batch()
    ids = softmax_topk(torch.from_numpy(logits[:tokens]), top_k).topk_ids
    labels = [f"token {s // top_k} “{words[s // top_k]}”, choice {s % top_k + 1}"  # words are [a-z]+
              for s in range(tokens * top_k)]  # fmt: skip
    return words[:tokens], ids, labels


def _dispatch() -> tuple[Dispatch, torch.Tensor, list[str]]:
    _, ids, labels = _batch()
    return align_block_size(ids, _num_experts(), int(st.session_state["experts_block"])), ids, labels


def _num_experts() -> int:
    return get_model().config.num_experts


# --- panels ------------------------------------------------------------------------------------


@st.fragment(key=DISPATCH)
def dispatch_panel() -> None:
    with st.container(border=True):
        deps = [DISPATCH, BLOCKS, TILES, CAPACITY, KERNEL]
        c1, c2 = st.columns(2)
        c1.slider("tokens in the batch T", 4, 96, step=4, key="experts_tokens",
                  on_change=_changed, args=("experts_tokens", deps))  # fmt: skip
        c2.slider("experts per token k", 1, 4, key="experts_k", on_change=_changed, args=("experts_k", deps))
        _notices("experts_tokens", "experts_k")
        words, ids, labels = _batch()
        num_experts = _num_experts()
        sorted_slots, counts = sort_by_expert(ids, num_experts)
        fig = charts.dispatch_tracks(
            ids.flatten().tolist(),
            sorted_slots.tolist(),
            labels,
            num_experts,
            title=f"{ids.numel()} slots of {len(words)} tokens, sorted by expert",
        )
        st.plotly_chart(fig, key="experts_dispatch_chart")
        offsets = np.concatenate([[0], np.cumsum(counts.numpy())])
        table = pd.DataFrame({"slots n_e": [str(c) for c in counts.tolist()],
                              "offset o_e": [str(o) for o in offsets[:-1]],
                              "rows": [f"{a}–{b - 1}" if b > a else "(empty)"
                                       for a, b in itertools.pairwise(offsets)]},
                             index=[f"E{e}" for e in range(num_experts)])  # fmt: skip
        st.dataframe(table.T)
        st.caption("After one sort, every expert's rows are contiguous.")
        write_url(experts_tokens=st.session_state["experts_tokens"], experts_k=st.session_state["experts_k"])


@st.fragment(key=BLOCKS)
def blocks_panel() -> None:
    with st.container(border=True):
        block = st.select_slider(
            "block size BLOCK_M (rows per M-block)",
            BLOCK_SIZES,
            key="experts_block",
            on_change=_changed,
            args=("experts_block", [BLOCKS, TILES, KERNEL]),
        )
        _notices("experts_block")
        d, _, labels = _dispatch()
        n, n_pad = d.num_slots, d.num_padded_rows
        title = f"{d.block_expert_ids.numel()} M-blocks of {block} rows, each labelled with its expert"
        fig = charts.block_grid(
            d.sorted_slot_ids.tolist(),
            d.block_expert_ids.tolist(),
            block,
            n,
            labels,
            _num_experts(),
            title=title,
        )
        st.plotly_chart(fig, key="experts_blocks_chart")
        c = st.columns(4)
        c[0].metric("slots N", n)
        c[1].metric("padded rows", n_pad)
        c[2].metric("padding", f"{(n_pad - n) / max(n_pad, 1):.0%}")
        c[3].metric("bound N + E(B−1)", n + _num_experts() * (block - 1))
        if block < 16:
            st.caption(
                "Triton's `tl.dot` needs tiles of at least 16 rows, so the kernel itself uses "
                "BLOCK_M ≥ 16; smaller blocks are drawn only to show padding at a small scale."
            )
        st.caption("Padding costs the most when segments are short.")
        write_url(experts_block=block)


def _valid_rows(d: Dispatch) -> np.ndarray:
    """Real (non-padding) rows of each M-block."""
    real = (d.sorted_slot_ids < d.num_slots).reshape(-1, d.block_size)
    return real.sum(1).numpy()


@st.fragment(key=TILES)
def tiles_panel() -> None:
    with st.container(border=True):
        c1, c2 = st.columns(2)
        width = c1.select_slider("output columns of the GEMM (expert width F)", WIDTHS, key="experts_width",
                                 help="The demo's experts have F = 32; wider experts need more N-blocks.",
                                 on_change=_changed, args=("experts_width", [TILES]))  # fmt: skip
        block_n = c2.select_slider("BLOCK_N (columns per tile)", BLOCK_NS, key="experts_block_n",
                                   on_change=_changed, args=("experts_block_n", [TILES]))  # fmt: skip
        _notices("experts_width", "experts_block_n")
        d, _, _ = _dispatch()
        num_m = d.block_expert_ids.numel()
        fig = charts.launch_grid(
            d.block_expert_ids.tolist(),
            _valid_rows(d).tolist(),
            d.block_size,
            width,
            block_n,
            GROUP_M,
            _num_experts(),
            title="Launch grid: one program per tile, numbered as the kernel does",
        )
        st.plotly_chart(fig, key="experts_tiles_chart")
        busy = int((d.tokens_per_expert > 0).sum())
        programs = num_m * -(-width // block_n)
        st.markdown(f"**One launch of {programs} programs** ({num_m} M-blocks × {-(-width // block_n)} "
                    f"N-blocks, grouped {GROUP_M} M-blocks at a time). A per-expert loop would instead "
                    f"launch separate matrix multiplies for each of the {busy} experts that have tokens, "
                    "and wait for each expert's row count first.")  # fmt: skip
        st.caption("One launch covers every expert; each tile needs only its block's expert id.")
        write_url(experts_width=width, experts_block_n=block_n)


@st.fragment(key=CAPACITY)
def capacity_panel() -> None:
    with st.container(border=True):
        cf = st.slider("capacity factor CF", 0.25, 3.0, step=0.05, key="experts_capacity",
                       on_change=_changed, args=("experts_capacity", [CAPACITY]))  # fmt: skip
        _notices("experts_capacity")
        words, ids, _ = _batch()
        num_experts = _num_experts()
        cap = apply_capacity(ids, num_experts, cf)
        routed = torch.bincount(ids.flatten(), minlength=num_experts)
        kept = torch.bincount(ids[cap.keep], minlength=num_experts)
        st.plotly_chart(charts.capacity_bars(routed.tolist(), kept.tolist(), cap.capacity,
                                             title=f"C = ⌈{cf:g} · {len(words)} · {ids.shape[1]} / "
                                                   f"{num_experts}⌉ = {cap.capacity} slots per expert"),
                        key="experts_capacity_chart")  # fmt: skip
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
        st.caption("Drops appear first on the busiest experts, and a larger CF buys fewer drops with more "
                   "padding.")  # fmt: skip
        write_url(experts_capacity=round(cf, 2))


# --- the kernel source -------------------------------------------------------------------------

LOOKUP_LINES = {  # a phrase of a kernel line -> what it does (the value comes from _lookup_values)
    "block_expert_ids_ptr + pid_m": "one integer per M-block: which expert's weights the tile reads",
    "offs_row = ": "the tile's rows in the sorted, padded layout",
    "sorted_slot_ids_ptr + offs_row": "the routed slot behind each row (padding rows hold N)",
    "slot_valid = ": "mask: padding rows neither load nor store",
    "a_rows = ": "slot → token row of x (x has one row per token, so divide by k)",
}


@lru_cache(maxsize=1)
def kernel_source() -> tuple[str, int, list[tuple[int, str]]]:
    """`grouped_gemm_kernel`'s source (read from the file, no Triton import), its first line number
    in the file, and the (line in the excerpt, phrase) of each segment-lookup line."""
    path = Path(moe_core.kernels.__file__).with_name("grouped_gemm.py")
    text = path.read_text(encoding="utf-8")
    fn = next(n for n in ast.parse(text).body
              if isinstance(n, ast.FunctionDef) and n.name == "grouped_gemm_kernel")  # fmt: skip
    first = min([fn.lineno] + [d.lineno for d in fn.decorator_list])
    lines = text.splitlines()[first - 1 : fn.end_lineno]
    marks = [(i + 1, phrase) for i, line in enumerate(lines) for phrase in LOOKUP_LINES if phrase in line]
    return "\n".join(lines), first, marks


def _lookup_values(d: Dispatch, pid_m: int, top_k: int, words: list[str]) -> dict[str, str]:
    rows = d.sorted_slot_ids[pid_m * d.block_size : (pid_m + 1) * d.block_size]
    valid = rows < d.num_slots
    real = rows[valid].tolist()
    show = lambda xs: ", ".join(map(str, xs[:8])) + (" …" if len(xs) > 8 else "")
    return {
        "block_expert_ids_ptr + pid_m": f"expert = {int(d.block_expert_ids[pid_m])}",
        "offs_row = ": f"rows {pid_m * d.block_size}–{(pid_m + 1) * d.block_size - 1}",
        "sorted_slot_ids_ptr + offs_row": f"slots {show(rows.tolist())}",
        "slot_valid = ": f"{int(valid.sum())} real rows, {int((~valid).sum())} padding",
        "a_rows = ": "tokens " + show([f"{s // top_k} ({words[s // top_k]})" for s in real]),
    }


@st.fragment(key=KERNEL)
def kernel_panel() -> None:
    with st.container(border=True):
        d, ids, _ = _dispatch()
        words, _, _ = _batch()
        num_m = d.block_expert_ids.numel()
        st.session_state["experts_tile"] = min(int(st.session_state["experts_tile"]), num_m - 1)
        source, first, marks = kernel_source()
        lines = source.splitlines()
        left, right = st.columns([2, 3])
        with left:
            pid_m = st.slider(
                "M-block pid_m to follow",
                0,
                max(num_m - 1, 1),
                key="experts_tile",
                disabled=num_m < 2,
                on_change=_changed,
                args=("experts_tile", [KERNEL]),
            )
            _notices("experts_tile")
            fig = charts.tile_strip(
                d.block_expert_ids.tolist(),
                _valid_rows(d).tolist(),
                d.block_size,
                pid_m,
                title=f"M-blocks (BLOCK_M = {d.block_size})",
            )
            st.plotly_chart(fig, key="experts_kernel_chart")
        with right:
            _lookup_excerpt(lines, first, marks, _lookup_values(d, pid_m, ids.shape[1], words))
        st.markdown(f"**The whole kernel**, `grouped_gemm_kernel` (listing line 1 = file line {first}):")
        st.code(source, language="python", line_numbers=True, height=420)
        st.caption("Every tile starts with one lookup: the expert id of its M-block.")
        write_url(experts_tile=pid_m)


def _lookup_excerpt(
    lines: list[str], first: int, marks: list[tuple[int, str]], values: dict[str, str]
) -> None:
    """The segment-lookup lines of the kernel with what each does and its value for the tile."""
    if not marks:  # the kernel was rewritten without these lines: the full listing still shows it
        st.caption("The segment-lookup lines were not found in the kernel source; see the listing below.")
        return
    lo, hi = marks[0][0], marks[-1][0]
    st.markdown(
        f"**The segment lookup** (lines {first + lo - 1}–{first + hi - 1} of "
        "`moe_core/kernels/grouped_gemm.py`), with its values for the chosen tile:"
    )
    st.code("\n".join(lines[max(lo - 2, 0) : hi]), language="python", wrap_lines=True)
    st.markdown("\n".join(f"- line {first + n - 1}: {LOOKUP_LINES[p]} → `{values[p]}`" for n, p in marks))
