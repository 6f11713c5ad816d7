"""Lesson 3's optional deep dive: the Triton kernel's source, with the lookups for one M-block.

The page shows `moe_core/kernels/grouped_gemm.py` as learners read it, and beside the lines that
look values up (the block's expert id, its slot ids, the token rows they point to) it prints what
those lookups give for an M-block of the live batch (`batch.py`).
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import streamlit as st

import moe_core.kernels
from lessons.course.charts import show_chart
from lessons.course.url_state import write_url
from lessons.lesson3_experts import figures as charts
from lessons.lesson3_experts.batch import KERNEL, changed, live_batch, live_dispatch, notices, valid_rows
from moe_core.dispatch import Dispatch

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
        d, ids, _ = live_dispatch()
        words, _, _ = live_batch()
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
                on_change=changed,
                args=("experts_tile", [KERNEL]),
            )
            notices("experts_tile")
            fig = charts.tile_strip(
                d.block_expert_ids.tolist(),
                valid_rows(d).tolist(),
                d.block_size,
                pid_m,
                title=f"M-blocks (BLOCK_M = {d.block_size})",
            )
            show_chart(fig, key="experts_kernel_chart",
                       summary=f"M-block {pid_m} reads expert E{int(d.block_expert_ids[pid_m])}: "
                               f"{int(valid_rows(d)[pid_m])} real rows and "
                               f"{d.block_size - int(valid_rows(d)[pid_m])} padding rows.")  # fmt: skip
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
