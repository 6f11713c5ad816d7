"""Lesson 3 figures: dispatch tracks, block-aligned segments, the launch grid, capacity, benchmark.

Pure functions: arrays from `moe_core.dispatch` in, a `go.Figure` out (no Streamlit, no model).
Experts keep the same Okabe–Ito colour in every figure (expert e = `color(e)`), padding rows are
light grey with a cross pattern, and every cell or bar names its numbers in the hover text.

Shape legend: T tokens, K experts per token, N = T*K slots (slot s = t*K + k), E experts,
B = BLOCK_M rows per M-block, N_pad = padded rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from lessons.course.figures import (  # styled_layout: one-call figures, see there
    GREY,
    LEGEND_RIGHT,
    TEXT,
    color,
    hline,
    styled_layout,
    trace,
    unchecked_figure,
)

PAD_COLOR = "#E3E7ED"  # padding rows: lighter than GREY so real rows always stand out


def _categorical(num_experts: int) -> dict:
    """Heatmap colours by category: 0 = padding, e + 1 = expert e (no colour bar: hover names it)."""
    colors = [PAD_COLOR] + [color(e) for e in range(num_experts)]
    n = len(colors)
    scale = []
    for i, c in enumerate(colors):
        scale += [[i / n, c], [(i + 1) / n, c]]
    return {"colorscale": scale, "zmin": -0.5, "zmax": n - 0.5, "showscale": False}


def dispatch_tracks(expert_of_slot: Sequence[int], sorted_slots: Sequence[int], slot_labels: Sequence[str],
                    num_experts: int, *, title: str | None = None) -> go.Figure:  # fmt: skip
    """Slots in token order (top) joined to their place in the sorted, expert-grouped order (bottom)."""
    expert_of_slot = np.asarray(expert_of_slot, dtype=int)
    sorted_slots = np.asarray(sorted_slots, dtype=int)
    position = np.empty_like(sorted_slots)
    position[sorted_slots] = np.arange(sorted_slots.size)  # sorted row of each slot
    traces = []
    for e in range(num_experts):
        slots = np.flatnonzero(expert_of_slot == e)
        if not slots.size:
            continue
        xs: list[float | None] = []
        ys: list[float | None] = []
        for s in slots:
            xs += [float(s), float(position[s]), None]
            ys += [1.0, 0.0, None]
        traces.append(trace("scatter", x=xs, y=ys, mode="lines", line={"color": color(e), "width": 1.2},
                            opacity=0.55, hoverinfo="skip", showlegend=False))  # fmt: skip
        custom = [[slot_labels[s], int(s), int(position[s])] for s in slots]
        traces.append(trace(
            "scatter",
            x=np.concatenate([slots, position[slots]]), y=[1.0] * slots.size + [0.0] * slots.size,
            mode="markers", name=f"E{e} ({slots.size})",
            marker={"color": color(e), "size": 9, "line": {"color": TEXT, "width": 0.5}},
            customdata=custom + custom,
            hovertemplate=f"expert E{e}<br>%{{customdata[0]}}<br>slot %{{customdata[1]}} → sorted row "
                          "%{customdata[2]}<extra></extra>",
        ))  # fmt: skip
    layout = styled_layout(
        title, 330, legend={"y": -0.25, "yanchor": "top", "x": 0.0},  # below: the title is on top
        yaxis={"tickvals": [1, 0], "ticktext": ["token order", "sorted by expert"], "range": [-0.3, 1.3]},
        xaxis={"title": {"text": "slot position"}, "zeroline": False},
    )  # fmt: skip
    return unchecked_figure(traces, layout)


def block_grid(sorted_slot_ids: Sequence[int], block_expert_ids: Sequence[int], block_size: int,
               num_slots: int, slot_labels: Sequence[str], num_experts: int, *,
               highlight: int | None = None, title: str | None = None) -> go.Figure:  # fmt: skip
    """One column per M-block (its expert on top), one cell per row; padding rows grey.

    sorted_slot_ids [N_pad] (padding = num_slots), block_expert_ids [N_pad / B].
    """
    ids = np.asarray(sorted_slot_ids, dtype=int)
    blocks = np.asarray(block_expert_ids, dtype=int)
    num_blocks = blocks.size
    grid = ids.reshape(num_blocks, block_size).T if num_blocks else np.zeros((block_size, 0), dtype=int)
    pad = grid >= num_slots
    z = np.where(pad, 0, np.repeat(blocks[None, :] + 1, block_size, axis=0))
    hover = np.empty(grid.shape, dtype=object)
    for i in range(block_size):
        for b in range(num_blocks):
            row = b * block_size + i
            hover[i, b] = (f"row {row}: padding (slot id {num_slots} = N, masked)" if pad[i, b]
                           else f"row {row}: slot {grid[i, b]}, {slot_labels[grid[i, b]]}")  # fmt: skip
    heat = trace(
        "heatmap",
        z=z, x=list(range(num_blocks)), y=list(range(block_size)), customdata=hover, xgap=3, ygap=1,
        hovertemplate="M-block %{x} (expert E%{text})<br>%{customdata}<extra></extra>",
        text=np.repeat(blocks[None, :], block_size, axis=0).astype(str), **_categorical(num_experts),
    )  # fmt: skip
    shapes = []
    if highlight is not None and 0 <= highlight < num_blocks:
        shapes.append({"type": "rect", "x0": highlight - 0.5, "x1": highlight + 0.5, "y0": -0.5,
                       "y1": block_size - 0.5, "line": {"color": TEXT, "width": 3}})  # fmt: skip
    layout = styled_layout(
        title, 150 + min(block_size, 64) * (12 if block_size <= 16 else 6), shapes=shapes,
        # Each column is labelled with the expert its M-block reads (the title says so; an axis
        # title on top would collide with it).
        xaxis={"tickvals": list(range(num_blocks)), "ticktext": [f"E{e}" for e in blocks], "side": "top"},
        yaxis={"autorange": "reversed", "title": {"text": f"row in block (B = {block_size})"}},
        margin={"t": 84 if title else 40},  # room for the title above the expert labels
    )  # fmt: skip
    return unchecked_figure([heat], layout)


def program_ids(num_pid_m: int, num_pid_n: int, group_m: int) -> np.ndarray:
    """[num_pid_m, num_pid_n] program id of each tile, mapped exactly as `grouped_gemm_kernel` does."""
    out = np.zeros((num_pid_m, num_pid_n), dtype=int)
    per_group = group_m * num_pid_n
    for pid in range(num_pid_m * num_pid_n):
        first_m = (pid // per_group) * group_m
        size_m = min(num_pid_m - first_m, group_m)
        out[first_m + (pid % per_group) % size_m, (pid % per_group) // size_m] = pid
    return out


def launch_grid(block_expert_ids: Sequence[int], valid_rows: Sequence[int], block_size: int,
                out_cols: int, block_n: int, group_m: int, num_experts: int, *,
                title: str | None = None) -> go.Figure:  # fmt: skip
    """The kernel's launch grid: M-blocks (rows) x N-blocks (columns) by expert, program ids printed."""
    blocks = np.asarray(block_expert_ids, dtype=int)
    valid = np.asarray(valid_rows, dtype=int)
    num_n = -(-out_cols // block_n)
    pids = program_ids(blocks.size, num_n, group_m)
    z = np.repeat(blocks[:, None] + 1, num_n, axis=1)
    info = np.array([[f"E{blocks[m]}, {valid[m]}/{block_size} real rows, columns {n * block_n}–"
                      f"{min(out_cols, (n + 1) * block_n) - 1}" for n in range(num_n)]
                     for m in range(blocks.size)], dtype=object).reshape(blocks.size, num_n)  # fmt: skip
    heat = trace(
        "heatmap",
        z=z, customdata=info, text=pids.astype(str), texttemplate="%{text}", xgap=2, ygap=2,
        hovertemplate="program %{text}: pid_m %{y}, pid_n %{x}<br>%{customdata}<extra></extra>",
        **_categorical(num_experts),
    )  # fmt: skip
    layout = styled_layout(
        title, 150 + 22 * max(blocks.size, 4),
        xaxis={"title": {"text": f"N-block pid_n (BLOCK_N = {block_n})"}, "dtick": 1},
        yaxis={"title": {"text": "M-block pid_m"}, "autorange": "reversed",
               "dtick": 1 if blocks.size <= 24 else None},
    )  # fmt: skip
    return unchecked_figure([heat], layout)


def tile_strip(block_expert_ids: Sequence[int], valid_rows: Sequence[int], block_size: int,
               selected: int | None = None, *, title: str | None = None) -> go.Figure:  # fmt: skip
    """One bar per M-block: real rows in the expert's colour, padding rows grey; `selected` outlined."""
    blocks = np.asarray(block_expert_ids, dtype=int)
    valid = np.asarray(valid_rows, dtype=int)
    y = [f"pid_m {m} → E{e}" for m, e in enumerate(blocks)]
    width = [3 if m == selected else 0 for m in range(blocks.size)]
    bars = [
        trace("bar", y=y, x=valid, orientation="h", name="real rows", marker_color=[color(e) for e in blocks],
              marker_line={"color": TEXT, "width": width},
              hovertemplate="%{y}: %{x} real rows<extra></extra>"),
        trace("bar", y=y, x=block_size - valid, orientation="h", name="padding rows", marker_color=PAD_COLOR,
              marker_pattern_shape="x", marker_line={"color": TEXT, "width": width},
              hovertemplate="%{y}: %{x} padding rows<extra></extra>"),
    ]  # fmt: skip
    layout = styled_layout(
        title, 170 + 24 * max(blocks.size, 3), barmode="stack",
        legend={"y": -0.08, "yanchor": "top", "x": 0.0},  # below: the title is on top
        yaxis={"autorange": "reversed", "type": "category"},
        xaxis={"range": [0, block_size]},  # rows of the tile; the legend names both parts
    )  # fmt: skip
    return unchecked_figure(bars, layout)


def capacity_bars(routed: Sequence[int], kept: Sequence[int], capacity: int, *, title: str | None = None
                  ) -> go.Figure:  # fmt: skip
    """Per expert: kept slots (expert colour) under dropped slots (grey, crossed), capacity line."""
    routed = np.asarray(routed, dtype=int)
    kept = np.asarray(kept, dtype=int)
    x = [f"E{e}" for e in range(routed.size)]
    bars = [
        trace("bar", x=x, y=kept, name="kept", marker_color=[color(e) for e in range(routed.size)],
              hovertemplate="%{x}: %{y} slots kept<extra></extra>"),
        trace("bar", x=x, y=routed - kept, name="dropped", marker_color=GREY, marker_pattern_shape="x",
              text=[str(d) if d else "" for d in routed - kept], textposition="outside",
              hovertemplate="%{x}: %{y} slots dropped<extra></extra>"),
    ]  # fmt: skip
    note = {"text": f"capacity C = {capacity}", "xref": "paper", "x": 1, "y": capacity, "xanchor": "right",
            "yanchor": "bottom", "showarrow": False}  # fmt: skip
    layout = styled_layout(title, 320, barmode="stack", shapes=[hline(capacity, TEXT)], annotations=[note],
                           legend=LEGEND_RIGHT,
                           yaxis={"title": {"text": "routed slots"}, "rangemode": "tozero"})  # fmt: skip
    return unchecked_figure(bars, layout)


def bench_bars(labels: Sequence[str], ms: Sequence[float], notes: Sequence[str], *, title: str | None = None
               ) -> go.Figure:  # fmt: skip
    """Time per call on a log axis; `notes` (e.g. "interpreter") are printed beside each bar."""
    text = [f"{t:.3g} ms {n}".strip() for t, n in zip(ms, notes, strict=True)]
    bar = trace(
        "bar",
        y=list(labels), x=list(ms), orientation="h", text=text, textposition="auto",
        marker_color=[GREY if n else color(i) for i, n in enumerate(notes)],
        marker_pattern_shape=["/" if n else "" for n in notes],
        hovertemplate="%{y}: %{x:.4g} ms per call<extra></extra>",
    )  # fmt: skip
    x_axis = {"type": "log", "title": {"text": "milliseconds per call (log scale)"}}
    layout = styled_layout(title, 90 + 50 * len(labels), yaxis={"autorange": "reversed"}, xaxis=x_axis)
    return unchecked_figure([bar], layout)
