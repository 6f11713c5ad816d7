"""Lesson 5 figures: expert combinations, specialisation, the all-to-all traffic, memory per GPU.

Pure functions: lists in, a `go.Figure` out (no Streamlit, no model), each tested alone. Every
number a figure encodes as colour or height is in its hover text or printed in the cell, and the
lesson shows the same numbers as a table or caption.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lessons.course.figures import (
    GREY,
    OKABE_ITO,
    SEQUENTIAL,
    TEXT,
    human_count,
    style,
    trace,
)

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def big_count(n: float) -> str:
    """A count as people read it: 1,820; 553M; 1.17 × 10¹⁹ (never 1.17e+19)."""
    if n < 1e6:
        return f"{n:,.0f}"
    if n < 1e12:
        return human_count(n)
    exponent = len(f"{int(n)}") - 1
    return f"{n / 10**exponent:.3g} × 10" + str(exponent).translate(_SUPERSCRIPT)


def combinations_bars(splits: Sequence[int], combinations: Sequence[int | None], current: int,
                      title: str | None = None) -> go.Figure:
    """C(routed, top-k) for each split factor m on a log axis; None marks an impossible layout."""
    labels = [f"m = {m}" for m in splits]
    values = [c if c else None for c in combinations]
    colours = [OKABE_ITO["blue"] if m == current else GREY for m in splits]
    text = [big_count(c) if c else "n/a" for c in combinations]
    fig = go.Figure(trace("bar", x=labels, y=values, marker_color=colours, text=text, textposition="outside",
                          hovertemplate="%{x}: %{y:,} combinations<extra></extra>"))
    fig.update_yaxes(type="log", title="expert combinations per token (log)", exponentformat="power")
    fig.update_xaxes(title="split factor m (m·E experts)")
    return style(fig, title=title, height=320)


def specialisation_heatmap(shares: Sequence[Sequence[float]], title: str | None = None) -> go.Figure:
    """Domain x routed-expert share of slots; experts ordered by the domain they serve most."""
    m = np.asarray(shares, dtype=float)
    order = np.lexsort((-m.max(axis=0), m.argmax(axis=0)))  # group experts by their main domain
    m = m[:, order]
    fig = go.Figure(trace(
        "heatmap",
        z=m, x=[f"E{e}" for e in order], y=[f"domain {d}" for d in range(m.shape[0])],
        colorscale=SEQUENTIAL, zmin=0, zmax=max(float(m.max()), 1e-9),
        colorbar={"title": "share"},
        hovertemplate="%{y}, expert %{x}: %{z:.1%} of the domain's slots<extra></extra>"))
    fig.update_xaxes(title="routed experts (grouped by main domain)", showticklabels=m.shape[1] <= 32)
    fig.update_yaxes(autorange="reversed")
    return style(fig, title=title, height=300)


def _traffic_trace(matrix: np.ndarray, zmax: float, fmt: str, show_scale: bool) -> go.Heatmap:
    n = matrix.shape[0]
    names = [str(i) for i in range(n)]  # "GPU 7" x 8 side by side overlapped on a phone
    text = [[format(v, fmt) for v in row] for row in matrix] if n <= 8 else None
    return trace("heatmap", z=matrix, x=names, y=names, colorscale=SEQUENTIAL, zmin=0, zmax=zmax,
                 text=text, texttemplate="%{text}" if text else None, showscale=show_scale,
                 colorbar={"title": "slots", "len": 1.0, "y": 0.5, "yanchor": "middle"},
                 hovertemplate="from GPU %{y} to GPU %{x}: %{z:.1f} slots<extra></extra>")


def traffic_heatmaps(traffic: Sequence[Sequence[int]], expected: Sequence[Sequence[float]],
                     title: str | None = None) -> go.Figure:
    """The measured N x N traffic (row = sender, column = receiver) above its expected value.

    Stacked, not side by side: two N x N grids beside each other leave each about 100 px on a phone,
    too little for their numbers and titles (issue 18); stacked, each gets the full width.
    """
    real, exp = np.asarray(traffic, dtype=float), np.asarray(expected, dtype=float)
    n = real.shape[0]
    zmax = max(float(real.max()), float(exp.max()), 1.0)
    fig = make_subplots(rows=2, cols=1, vertical_spacing=0.2, shared_xaxes=False,
                        subplot_titles=("measured (all_to_all)", "expected (router)"))
    fig.add_trace(_traffic_trace(real, zmax, ".0f", True), row=1, col=1)
    fig.add_trace(_traffic_trace(exp, zmax, ".1f", False), row=2, col=1)
    for row in (1, 2):  # one "receiving GPU" title, under the lower grid: the upper one's hit its title
        fig.update_xaxes(title="receiving GPU" if row == 2 else None, side="bottom", type="category",
                         row=row, col=1)
        fig.update_yaxes(title="sending GPU", autorange="reversed", type="category", row=row, col=1)
    style(fig, title=title, height=200 + 2 * 26 * n)
    fig.update_layout(margin={"t": 84})
    fig.update_annotations(yshift=4)  # the subplot titles, clear of the grid under them
    return fig


def rank_load_bars(received: Sequence[int], expected: Sequence[float], title: str | None = None) -> go.Figure:
    """Slots each GPU's experts must process (the column sums), the busiest one highlighted."""
    load = np.asarray(received, dtype=float)
    names = [f"GPU {i}" for i in range(load.size)]
    # Highlight the straggler only when there is one (equal loads have no busiest GPU).
    busiest = int(load.argmax()) if load.size and load.max() > load.min() else -1
    colours = [OKABE_ITO["vermillion"] if i == busiest else OKABE_ITO["blue"] for i in range(load.size)]
    fig = go.Figure(trace("bar", x=names, y=load, marker_color=colours, name="measured",
                          hovertemplate="%{x}: %{y:.0f} slots<extra></extra>"))
    fig.add_trace(trace("scatter", x=names, y=list(expected), mode="markers", name="expected",
                        marker={"symbol": "line-ew-open", "size": 26, "color": TEXT,
                                     "line": {"width": 2}},
                        hovertemplate="%{x}: %{y:.1f} expected<extra></extra>"))
    if load.size:
        fig.add_hline(y=float(load.mean()), line_dash="dot", line_color=GREY,
                      annotation_text="mean", annotation_position="top left")
    fig.update_yaxes(title="routed slots received", rangemode="tozero")
    return style(fig, title=title, height=320, legend=LEGEND_BELOW)


# Under the plot, where the legend cannot collide with the title.
LEGEND_BELOW = {"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0.0}


MEMORY_PARTS = (("experts", "routed experts (1/G each)", OKABE_ITO["blue"]),
                ("replicated", "attention, embeddings, shared", OKABE_ITO["sky_blue"]),
                ("kv_cache", "KV cache", OKABE_ITO["orange"]),
                ("activations", "activations", OKABE_ITO["reddish_purple"]))


def memory_bars(per_gpu: Mapping[int, Mapping[str, float]], current: int, capacity_gb: float,
                title: str | None = None) -> go.Figure:
    """Stacked GB per GPU for each GPU count G, the chosen G outlined, a GPU's capacity dashed."""
    counts = sorted(per_gpu)
    names = [str(g) for g in counts]  # "G = 16" side by side overlapped on a phone
    fig = go.Figure()
    for key, label, colour in MEMORY_PARTS:
        fig.add_trace(trace("bar", x=names, y=[per_gpu[g][key] for g in counts], name=label,
                            marker_color=colour,
                            marker_line_width=[3 if g == current else 0 for g in counts],
                            marker_line_color=TEXT,
                            hovertemplate=f"%{{x}}: {label} %{{y:.1f}} GB<extra></extra>"))
    fig.add_hline(y=capacity_gb, line_dash="dash", line_color=OKABE_ITO["vermillion"],
                  annotation_text=f"{capacity_gb:g} GB GPU", annotation_position="top right")
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title="GB per GPU", rangemode="tozero")
    fig.update_xaxes(title="GPUs G (expert parallel)", type="category")
    return style(fig, title=title, height=400, legend=LEGEND_BELOW)


def flops_vs_memory(points: Sequence[Mapping[str, float | str]], highlight: str | None = None,
                    title: str | None = None) -> go.Figure:
    """Weight memory (bf16 GB) against FLOPs per token; dense models lie on the diagonal y = x.

    points: {"name", "weights_gb", "gflops"}. In bf16 a dense model of N parameters stores 2N bytes
    and costs 2N FLOPs per token, so GB and GFLOPs coincide; an MoE sits below by total/active.
    """
    top = max([1.0] + [float(p["weights_gb"]) for p in points]) * 1.5
    fig = go.Figure(trace("scatter", x=[1, top], y=[1, top], mode="lines", showlegend=False,
                          line={"dash": "dot", "color": GREY}, hoverinfo="skip"))
    fig.add_annotation(x=1.0, y=1.0, xref="x domain", yref="y domain", xanchor="right", yanchor="top",
                       text="dotted line: a dense model (GB = GFLOPs)", showarrow=False,
                       font={"color": GREY, "size": 12})
    for p in points:
        is_hi = p["name"] == highlight
        fig.add_trace(trace(
            "scatter",
            x=[p["weights_gb"]], y=[p["gflops"]], mode="markers+text" if is_hi else "markers",
            name=str(p["name"]), text=[str(p["name"]).split("/")[-1]], textposition="top left",
            showlegend=False,
            marker={"size": 14 if is_hi else 9,
                    "color": OKABE_ITO["vermillion"] if is_hi else OKABE_ITO["blue"]},
            hovertemplate=f"{p['name']}<br>%{{x:.0f}} GB of bf16 weights<br>"
                          f"%{{y:.1f}} GFLOPs per token<extra></extra>"))
    fig.update_xaxes(type="log", dtick=1, title="weight memory, bf16 (GB)")  # one tick per decade
    fig.update_yaxes(type="log", dtick=1, title="forward GFLOPs per token")
    return style(fig, title=title, height=380)


def parameter_caption(total: float, active: float) -> str:
    """"46.7B total, 12.9B active (28%)" for captions under tables."""
    return f"{human_count(total)} total, {human_count(active)} active ({active / total:.0%})"


def experts_touched_curve(num_experts: int, top_k: int, batches: Sequence[int], touched: Sequence[float],
                          current: int, *, title: str | None = None) -> go.Figure:  # fmt: skip
    """Expected experts a batch touches per layer against batch size (log x), the learner's batch
    marked: memory must hold every expert a batch may touch, compute only the k per token."""
    line = trace("scatter", x=list(batches), y=list(touched), mode="lines", name="experts touched",
                 line={"color": OKABE_ITO["blue"], "width": 3},
                 hovertemplate="batch of %{x} tokens: %{y:.1f} experts touched<extra></extra>")  # fmt: skip
    index = list(batches).index(current)
    mark = trace("scatter", x=[current], y=[touched[index]], mode="markers+text", name="your batch",
                 marker={"color": OKABE_ITO["vermillion"], "size": 12}, text=[f"{touched[index]:.0f}"],
                 textposition="top left", hoverinfo="skip")  # fmt: skip
    # The axes go through `style`, so that the margins it reserves count their titles.
    return style(go.Figure([line, mark]), title=title, height=300,
                 xaxis={"type": "log", "title": {"text": "tokens in the batch"}},
                 yaxis={"range": [0, num_experts * 1.08],
                        "title": {"text": f"experts touched (of {num_experts})"}},
                 showlegend=False,
                 shapes=[{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": top_k, "y1": top_k,
                          "line": {"color": GREY, "dash": "dot"}}])  # fmt: skip
