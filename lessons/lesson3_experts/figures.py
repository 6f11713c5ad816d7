"""Lesson 3 figures: dispatch tracks, block-aligned segments, the launch grid, capacity, benchmark.

Pure functions: arrays from `moe_core.dispatch` in, a Plotly spec out (`course.figures.figure_spec`:
the dict Plotly would send, made without Plotly's objects; no Streamlit, no model).
Experts keep the same Okabe–Ito colour in every figure (expert e = `color(e)`), padding rows are
light grey with a cross pattern, and every cell or bar names its numbers in the hover text.

Shape legend: T tokens, K experts per token, N = T*K slots (slot s = t*K + k), E experts,
B = BLOCK_M rows per M-block, N_pad = padded rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lessons.course.figures import (  # styled_layout: one-call figures, see there
    GREY,
    TEXT,
    FigureSpec,
    color,
    figure_spec,
    hline,
    styled_layout,
    trace,
)

PAD_COLOR = "#E3E7ED"  # padding rows: lighter than GREY so real rows always stand out


def _categorical(num_experts: int, tinted: bool = False) -> dict:
    """Heatmap colours by category: 0 = padding, e + 1 = expert e (no colour bar: hover names it)."""
    colors = [PAD_COLOR] + [tint(color(e)) if tinted else color(e) for e in range(num_experts)]
    n = len(colors)
    scale = []
    for i, c in enumerate(colors):
        scale += [[i / n, c], [(i + 1) / n, c]]
    return {"colorscale": scale, "zmin": -0.5, "zmax": n - 0.5, "showscale": False}


def dispatch_tracks(expert_of_slot: Sequence[int], sorted_slots: Sequence[int], slot_labels: Sequence[str],
                    num_experts: int, *, title: str | None = None) -> FigureSpec:  # fmt: skip
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
        title, 330, legend={"y": -0.12, "yanchor": "top", "x": 0.0},  # below: the title is on top
        yaxis={"tickvals": [1, 0], "ticktext": ["token order", "sorted by expert"], "range": [-0.3, 1.3]},
        xaxis={"zeroline": False},  # no axis title: the legend sits below, and the rows say what x is
    )  # fmt: skip
    return figure_spec(traces, layout)


def block_grid(sorted_slot_ids: Sequence[int], block_expert_ids: Sequence[int], block_size: int,
               num_slots: int, slot_labels: Sequence[str], num_experts: int, *,
               highlight: int | None = None, title: str | None = None) -> FigureSpec:  # fmt: skip
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
    return figure_spec([heat], layout)


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
                title: str | None = None) -> FigureSpec:  # fmt: skip
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
    return figure_spec([heat], layout)


def tile_strip(block_expert_ids: Sequence[int], valid_rows: Sequence[int], block_size: int,
               selected: int | None = None, *, title: str | None = None) -> FigureSpec:  # fmt: skip
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
    return figure_spec(bars, layout)


def capacity_bars(routed: Sequence[int], kept: Sequence[int], capacity: int, *, title: str | None = None
                  ) -> FigureSpec:  # fmt: skip
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
                           legend={"y": -0.12, "yanchor": "top", "x": 0.0},  # below: titles are long
                           yaxis={"title": {"text": "routed slots"}, "rangemode": "tozero"})  # fmt: skip
    return figure_spec(bars, layout)


def bench_bars(labels: Sequence[str], ms: Sequence[float], notes: Sequence[str], *, title: str | None = None,
               reference: int | None = None) -> FigureSpec:  # fmt: skip
    """Time per call on a linear axis that starts at zero, so bar heights compare honestly.

    With `reference` (an index into `labels`), each bar's text also gives its time as a multiple
    of that bar's ("1.04×"): a 4% difference reads as 1.04×, never as twice the height.
    `notes` (e.g. "interpreter") are printed beside each bar and grey it out.
    """
    ratios = [t / ms[reference] if reference is not None and ms[reference] > 0 else None for t in ms]
    text = []
    for i, (t, r, n) in enumerate(zip(ms, ratios, notes, strict=True)):
        ratio = f" ({r:.2f}×)" if r is not None and i != reference else ""
        text.append(f"{t:.3g} ms{ratio}" + (f" {n}" if n else ""))
    bar = trace(
        "bar",
        x=[_two_lines(label) for label in labels], y=list(ms), text=text, textposition="outside",
        cliponaxis=False, marker_color=[GREY if n else color(i) for i, n in enumerate(notes)],
        marker_pattern_shape=["/" if n else "" for n in notes],
        hovertemplate="%{x}: %{y:.4g} ms per call<extra></extra>",
    )  # fmt: skip
    top = max(ms, default=1.0) or 1.0
    # Vertical bars: the labels wrap under them and the numbers sit above, so a phone shows both.
    y_axis = {"title": {"text": "ms per call"}, "rangemode": "tozero", "range": [0, top * 1.2]}  # from 0
    layout = styled_layout(title, 320, yaxis=y_axis, showlegend=False)
    return figure_spec([bar], layout)


def _two_lines(label: str) -> str:
    """A label broken at its middle space, so bars can sit side by side on a phone."""
    words = label.split()
    if len(words) < 3:
        return label
    half = len(words) // 2
    return " ".join(words[:half]) + "<br>" + " ".join(words[half:])


def dispatch_overview(expert_of_slot: Sequence[int], sorted_slot_ids: Sequence[int],
                      block_expert_ids: Sequence[int], block_size: int, slot_labels: Sequence[str],
                      num_experts: int, *,
                      title: str | None = None) -> FigureSpec:  # fmt: skip
    """The whole dispatch in one picture: slots in token order (top) drawn to the kernel's rows
    (bottom): sorted by expert, each segment padded to whole M-blocks, one expert per block.

    expert_of_slot [N]; sorted_slot_ids [N_pad] (padding rows hold N); block_expert_ids [N_pad / B].
    """
    expert_of_slot = np.asarray(expert_of_slot, dtype=int)
    rows = np.asarray(sorted_slot_ids, dtype=int)
    blocks = np.asarray(block_expert_ids, dtype=int)
    n = expert_of_slot.size
    row_of_slot = np.empty(n, dtype=int)
    real = rows < n
    row_of_slot[rows[real]] = np.flatnonzero(real)
    # The slots are spread over the kernel rows' width, so the lines show the sort, not a squeeze.
    spread = (np.arange(n) + 0.5) * max(rows.size, 1) / max(n, 1) - 0.5
    size = float(np.clip(600 / max(rows.size, 1), 4, 8))  # smaller markers when rows crowd
    traces: list[dict] = []
    for e in range(num_experts):
        slots = np.flatnonzero(expert_of_slot == e)
        if not slots.size:
            continue
        xs = np.full(3 * slots.size, None, dtype=object)
        ys = np.full(3 * slots.size, None, dtype=object)
        xs[0::3], xs[1::3] = spread[slots], row_of_slot[slots]
        ys[0::3], ys[1::3] = 1.0, 0.0
        traces.append(trace("scatter", x=xs.tolist(), y=ys.tolist(), mode="lines", hoverinfo="skip",
                            line={"color": color(e), "width": 1}, opacity=0.45,
                            showlegend=False))  # fmt: skip
        custom = [[slot_labels[s], int(s), int(row_of_slot[s])] for s in slots]
        traces.append(trace(
            "scatter", x=np.concatenate([spread[slots], row_of_slot[slots]]).tolist(),
            y=[1.0] * slots.size + [0.0] * slots.size, mode="markers", name=f"E{e}",
            marker={"color": color(e), "size": size, "line": {"color": TEXT, "width": 0.5}},
            customdata=custom + custom,
            hovertemplate=f"expert E{e}<br>%{{customdata[0]}}<br>slot %{{customdata[1]}} → kernel row "
                          "%{customdata[2]}<extra></extra>",
        ))  # fmt: skip
    pad = np.flatnonzero(~real)
    if pad.size:
        traces.append(trace("scatter", x=pad.tolist(), y=[0.0] * pad.size, mode="markers", name="padding",
                            marker={"color": PAD_COLOR, "size": size, "symbol": "x-thin",
                                    "line": {"color": GREY, "width": 1.5}},
                            hovertemplate="kernel row %{x}: padding (masked)<extra></extra>"))  # fmt: skip
    # One tinted cell per M-block behind the kernel rows (a heatmap: a shape per block cost more).
    strip = trace("heatmap", z=[(blocks + 1).tolist()], x0=(block_size - 1) / 2, dx=block_size, y0=0.0,
                  dy=0.4, xgap=2, hoverinfo="skip", **_categorical(num_experts, tinted=True))  # fmt: skip
    traces.insert(0, strip)
    notes = [{"x": (b + 0.5) * block_size - 0.5, "y": -0.2, "yanchor": "top", "text": f"E{e}",
              "showarrow": False, "font": {"size": 11, "color": TEXT}}
             for b, e in enumerate(blocks)] if blocks.size <= 40 else []  # fmt: skip
    layout = styled_layout(
        title, 300, annotations=notes, showlegend=False,
        yaxis={"tickvals": [1, 0], "ticktext": ["token order", "kernel rows"], "range": [-0.45, 1.2],
               "fixedrange": True},
        xaxis={"title": {"text": f"kernel row (blocks of B = {block_size})"},
               "zeroline": False, "fixedrange": True},
    )  # fmt: skip
    return figure_spec(traces, layout)


def gemm_tiles(block_expert_ids: Sequence[int], valid_rows: Sequence[int], block_size: int, out_cols: int,
               block_n: int, inner: int, block_k: int, pid_m: int, pid_n: int, *,
               title: str | None = None) -> FigureSpec:  # fmt: skip
    """The grouped GEMM as a picture: C = A · W_e^T, tile by tile.

    A (left) holds the token rows in the kernel's sorted, padded order [N_pad, inner], tinted by
    expert (padding grey). Above C sits the chosen tile's expert weight matrix W_e^T [inner,
    out_cols]. Tile (pid_m, pid_n) of C is A's M-block pid_m times W_e's N-block pid_n, summed over
    inner / block_k steps (outlined). Sizes are schematic, not to scale.

    NOTE: the matrices are heatmaps and only the chosen tile's parts are shapes: a shape per tile
    took ~16 ms per slider move at 112 tiles (measured), a heatmap costs the same at any size.
    """
    blocks = np.asarray(block_expert_ids, dtype=int)
    valid = np.asarray(valid_rows, dtype=int)
    num_m, num_n, num_k = max(blocks.size, 1), -(-out_cols // block_n), -(-inner // block_k)
    expert = int(blocks[pid_m]) if blocks.size else 0
    experts = int(blocks.max()) + 1 if blocks.size else 1
    h, w_c, w_a, h_b, gap = 6.0, 6.0, 3.0, 3.0, 0.5  # drawing units (schematic)
    dm, dn, dk_a, dk_b = h / num_m, w_c / num_n, w_a / num_k, h_b / num_k
    a0 = -gap - w_a  # A spans x in [a0, -gap]; C spans [0, w_c]; W spans y in [h + gap, h + gap + h_b]
    scale = _categorical(experts, tinted=True)
    # A, one row per kernel row (bottom-up for the heatmap): expert + 1 on real rows, 0 on padding.
    real = np.arange(block_size)[None, :] < valid[:, None]  # [M-blocks, B]: real rows come first
    z_a = np.where(real, blocks[:, None] + 1, 0).reshape(-1)[::-1, None].repeat(num_k, axis=1)
    dr = h / max(z_a.shape[0], 1)
    z_c = np.repeat(blocks[::-1, None] + 1, num_n, axis=1)
    heat = dict(hoverinfo="skip", xgap=1, ygap=0, **scale)
    traces = [
        trace("heatmap", z=z_a.tolist(), x0=a0 + dk_a / 2, dx=dk_a, y0=dr / 2, dy=dr, **heat),
        trace("heatmap", z=z_c.tolist(), x0=dn / 2, dx=dn, y0=dm / 2, dy=dm, **{**heat, "ygap": 1}),
        trace("heatmap", z=np.full((num_k, num_n), expert + 1).tolist(), x0=dn / 2, dx=dn,
              y0=h + gap + dk_b / 2, dy=dk_b, **{**heat, "ygap": 1}),
    ]  # fmt: skip
    top, bottom = h - pid_m * dm, h - (pid_m + 1) * dm
    clear = "rgba(0,0,0,0)"
    shapes = [
        rect(a0, -gap, bottom, top, clear, line=TEXT, width=2),  # A: the tile's M-block
        rect(
            pid_n * dn,
            (pid_n + 1) * dn,
            h + gap,
            h + gap + h_b,
            color(expert),
            line=TEXT,
            width=1.5,
            opacity=0.85,
        ),  # W: the tile's N-block of the expert's weights
        rect(pid_n * dn, (pid_n + 1) * dn, bottom, top, color(expert), line=TEXT, width=3),
    ]  # the tile
    shapes += [rect(a0 + k * dk_a, a0 + (k + 1) * dk_a, bottom, top, clear, line=TEXT, width=1)
               for k in range(num_k)]  # k-steps: BLOCK_K columns of A (and rows of W) at a time  # fmt: skip
    notes = [
        note(a0 + w_a / 2, -0.15, f"A: token rows<br>[{num_m * block_size} × {inner}]", yanchor="top"),
        note(w_c / 2, h + gap + h_b + 0.05, f"W of E{expert}<br>[{inner} × {out_cols}]", yanchor="bottom"),
        note(w_c + 0.2, (top + bottom) / 2, f"tile<br>({pid_m}, {pid_n})", xanchor="left"),
        note(a0 - 0.2, (top + bottom) / 2, f"pid_m<br>{pid_m}", xanchor="right"),
        note(w_c / 2, -0.15, f"C = A · W<br>[{num_m * block_size} × {out_cols}]", yanchor="top"),
        note(a0 + w_a / 2, h + 0.05, f"{num_k} k-step{'s' if num_k > 1 else ''}", yanchor="bottom"),
    ]  # fmt: skip
    hidden = {"visible": False, "fixedrange": True}
    layout = styled_layout(
        title, 460, shapes=shapes, annotations=notes, showlegend=False,
        xaxis={**hidden, "range": [a0 - 2.2, w_c + 2.2]},
        yaxis={**hidden, "range": [-1.6, h + gap + h_b + 1.0], "scaleanchor": "x", "scaleratio": 1},
    )  # fmt: skip
    return figure_spec(traces, layout)


def tint(hex_color: str, amount: float = 0.35) -> str:
    """`hex_color` mixed with white: `amount` of the colour (for the parts of a diagram not in focus)."""
    rgb = [int(hex_color[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(255 - amount * (255 - c)):02X}" for c in rgb)


def rect(
    x0: float,
    x1: float,
    y0: float,
    y1: float,
    fill: str,
    line: str = GREY,
    width: float = 0.5,
    opacity: float = 1.0,
    layer: str = "above",
) -> dict:
    """A filled rectangle shape in data coordinates (for schematic diagrams), above the traces."""
    return {
        "type": "rect",
        "x0": x0,
        "x1": x1,
        "y0": y0,
        "y1": y1,
        "fillcolor": fill,
        "opacity": opacity,
        "line": {"color": line, "width": width},
        "layer": layer,
    }


def note(x: float, y: float, text: str, **extra: object) -> dict:
    """A text annotation without an arrow, in the figure's text colour."""
    return {"x": x, "y": y, "text": text, "showarrow": False, "font": {"size": 12, "color": TEXT}, **extra}
