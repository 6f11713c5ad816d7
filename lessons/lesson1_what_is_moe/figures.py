"""Lesson 1 figures: parameter bars, token-to-expert routing, and the history timeline.

Pure functions: plain numbers and arrays in, a `go.Figure` out (no Streamlit, no model), so each is
tested on its own and built once per slider move. Every figure carries its numbers as text or
hover labels; the lesson also shows them in a table.

Shape legend: T tokens, E experts; `weights` is [T, E] with the gate weight of each chosen expert
and 0 where the expert was not chosen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from lessons.course.figures import GREY, SEQUENTIAL, TEXT, color, figure, human_count, trace, wrap_label


def params_bars(labels: Sequence[str], values: Sequence[float], colors: Sequence[str],
                *, title: str | None = None, unit: str = "") -> go.Figure:
    """Horizontal bars, one per quantity (e.g. total / active / dense of equal compute)."""
    if not len(labels) == len(values) == len(colors):
        raise ValueError("labels, values and colors must have the same length")
    text = [human_count(v, unit) for v in values]
    # Long labels wrapped: "Dense model of equal compute" on one line took 228 of a phone's 358 px,
    # and Plotly tilted the x labels of the 100 px plot left over (and drew the chart twice).
    bar = trace("bar", x=list(values), y=[wrap_label(label, 16) for label in labels], orientation="h",
                marker_color=list(colors), text=text, textposition="auto", customdata=list(labels),
                hovertemplate="%{customdata}: %{text}<extra></extra>", cliponaxis=False)
    return figure([bar], title=title, height=90 + 46 * len(labels),
                  yaxis={"autorange": "reversed"},  # first label on top, in reading order
                  xaxis={"title": {"text": f"parameters{' (' + unit + ')' if unit else ''}"},
                         "rangemode": "tozero"})


def routing_heatmap(weights: np.ndarray, tokens: Sequence[str], *, title: str | None = None) -> go.Figure:
    """Token x expert heatmap of gate weights; unchosen experts are 0 (white), values printed."""
    weights = np.asarray(weights, dtype=float)
    t, e = _check_weights(weights, tokens)
    text = [[f"{w:.2f}" if w > 0 else "" for w in row] for row in weights]
    heat = trace(
        "heatmap",
        z=weights, x=[f"E{i}" for i in range(e)], y=list(tokens), zmin=0.0, zmax=1.0,
        colorscale=SEQUENTIAL, text=text, texttemplate="%{text}", xgap=2, ygap=2,
        colorbar={"title": {"text": "gate<br>weight"}, "thickness": 12},
        hovertemplate="token %{y} → expert %{x}: weight %{z:.3f}<extra></extra>",
    )
    return figure([heat], title=title, height=110 + 34 * t,
                  yaxis={"autorange": "reversed", "type": "category"},
                  xaxis={"side": "top", "type": "category", "title": {"text": "expert"}})


def routing_lines(weights: np.ndarray, tokens: Sequence[str], *, title: str | None = None) -> go.Figure:
    """Tokens on the left, experts on the right, a line per (token, chosen expert).

    Line width and opacity grow with the gate weight; the line takes its expert's colour, and the
    hover text gives the weight, so colour is never the only cue.
    """
    weights = np.asarray(weights, dtype=float)
    t, e = _check_weights(weights, tokens)
    ty, ey = _spread(t), _spread(e)
    traces: list[dict] = []
    for i in range(t):
        for j in np.flatnonzero(weights[i] > 0):
            w = float(weights[i, j])
            traces.append(trace(
                "scatter",
                x=[0, 1], y=[ty[i], ey[j]], mode="lines", showlegend=False, opacity=0.35 + 0.65 * w,
                line={"width": 1 + 9 * w, "color": color(int(j))},
                hovertemplate=f"{tokens[i]} → E{j}: weight {w:.3f}<extra></extra>",
            ))
    load = (weights > 0).sum(axis=0)
    traces.append(trace(
        "scatter",
        x=[0] * t, y=ty, mode="markers+text", text=list(tokens), textposition="middle left",
        marker={"size": 14, "color": "#FFFFFF", "line": {"color": TEXT, "width": 1.5}},
        hovertemplate="token %{text}<extra></extra>", showlegend=False,
    ))
    traces.append(trace(
        "scatter",
        x=[1] * e, y=ey, mode="markers+text", textposition="middle right",
        text=[f"E{j} ({load[j]} token{'s' if load[j] != 1 else ''})" for j in range(e)],
        marker={"size": 18, "symbol": "square", "line": {"color": TEXT, "width": 1},
                "color": [color(j) if load[j] else GREY for j in range(e)]},
        hovertemplate="%{text}<extra></extra>", showlegend=False,
    ))
    return figure(traces, title=title, height=120 + 30 * max(t, e),
                  xaxis={"visible": False, "range": [-0.45, 1.55]},
                  yaxis={"visible": False, "range": [-0.06, 1.06]})


def timeline(dates: Sequence[str], labels: Sequence[str], details: Sequence[str],
             *, title: str | None = None) -> go.Figure:
    """Milestones top to bottom, evenly spaced, each date a tick label beside its name.

    Why vertical: twelve dates side by side leave about 27 px each on a phone (390 px), so the
    tick labels and names printed over each other (issue 18); one row per milestone reads at any
    width. Even spacing, not a date axis: 1991 and 2017 would otherwise squeeze the 2020s.
    """
    if not len(dates) == len(labels) == len(details):
        raise ValueError("dates, labels and details must have the same length")
    n = len(dates)
    points = trace(
        "scatter",
        x=[0.0] * n, y=list(range(n)), mode="markers+text", text=list(labels), textposition="middle right",
        marker={"size": 11, "color": [color(i % 7) for i in range(n)],  # 7: no black dot
                "line": {"color": TEXT, "width": 1}},
        customdata=[[d, det] for d, det in zip(dates, details, strict=True)],
        hovertemplate="<b>%{customdata[0]}: %{text}</b><br>%{customdata[1]}<extra></extra>",
        showlegend=False,
    )
    return figure([points], title=title, height=60 + 26 * n,
                  shapes=[{"type": "line", "x0": 0, "x1": 0, "y0": -0.5, "y1": n - 0.5,
                           "line": {"color": GREY, "width": 1.5}, "layer": "below"}],
                  xaxis={"visible": False, "range": [-0.08, 1.0]},
                  yaxis={"tickvals": list(range(n)), "ticktext": list(dates), "showgrid": False,
                         "range": [n - 0.5, -0.5], "zeroline": False})


def _check_weights(weights: np.ndarray, tokens: Sequence[str]) -> tuple[int, int]:
    if weights.ndim != 2 or weights.shape[0] != len(tokens):
        raise ValueError(f"weights must be [T, E] with T = len(tokens) = {len(tokens)}, "
                         f"got shape {weights.shape}")
    return weights.shape


def _spread(n: int) -> list[float]:
    """n positions evenly spaced from top (1) to bottom (0)."""
    return [0.5] if n == 1 else [1 - i / (n - 1) for i in range(n)]


def smooth(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean over the last `window` values (fewer at the start): one step's loss is one
    batch's, too noisy to compare runs by; the mean of the last few is not."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    sums = np.cumsum(np.concatenate([[0.0], np.asarray(values, dtype=float)]))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(0, ends - window)
    return ((sums[ends] - sums[starts]) / (ends - starts)).tolist()


def training_curves(curves: dict[str, tuple[Sequence[float], Sequence[float]]], *, x_title: str,
                    y_title: str | None = None, title: str | None = None) -> go.Figure:
    """One line per run: `curves[label] = (x, loss)`, in the order given (colours by position).
    A `y_title` other than the loss's (a gap to a reference) adds a solid line at 0."""
    lines = [
        trace("scatter", x=list(x), y=list(y), mode="lines", name=label, line={"color": color(i), "width": 2},
              hovertemplate=f"{label}<br>%{{x:,.2f}}: %{{y:.3f}}<extra></extra>")
        for i, (label, (x, y)) in enumerate(curves.items())
    ]  # fmt: skip
    zero = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 0, "y1": 0,
             "line": {"color": TEXT, "width": 1}}] if y_title else []  # fmt: skip
    return figure(lines, title=title, height=380, shapes=zero,
                  legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0.0},
                  xaxis={"title": {"text": x_title}, "rangemode": "tozero"},
                  yaxis={"title": {"text": y_title or "training loss (nats per token)"}})
