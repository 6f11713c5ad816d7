"""Lesson 4 figures across runs: the same seed under each method side by side, and a seed sweep.

Pure functions, arrays in and a `go.Figure` out, like `figures.py` (the single-run charts), whose
expert names and hatch patterns they share so a method's colours mean the same on every chart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lessons.course.figures import GREY, TEXT, base_layout, color, figure, trace
from lessons.lesson4_balancing.figures import DEAD_FRACTION, expert_names, expert_pattern, thin


def compare_runs(
    runs: Mapping[str, tuple[Sequence[float], Sequence[Sequence[float]]]],
    *,
    title: str | None = None,
    height: int = 340,
) -> go.Figure:
    """Side by side, one column per run: final load bars over the load-over-time bands.

    runs: name -> (final load [E], load history [S][E]).
    """
    names = list(runs)
    fig = make_subplots(
        rows=2,
        cols=len(names),
        subplot_titles=names,
        vertical_spacing=0.16,
        horizontal_spacing=0.08,
        row_heights=[0.45, 0.55],
    )
    for col, name in enumerate(names, start=1):
        load, history = runs[name]
        fair = 1 / len(load)
        fig.add_trace(
            trace(
                "bar",
                x=expert_names(len(load)),
                y=list(load),
                showlegend=False,
                marker={
                    "color": [GREY if v < DEAD_FRACTION * fair else color(e) for e, v in enumerate(load)],
                    "pattern": {"shape": [expert_pattern(e) for e in range(len(load))]},
                },
                hovertemplate=f"{name}<br>expert %{{x}}: share %{{y:.3f}}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.add_hline(y=fair, line={"color": TEXT, "dash": "dash", "width": 1}, row=1, col=col)
        steps = thin(len(history))
        for e in range(len(load)):
            fig.add_trace(
                trace(
                    "scatter",
                    x=[s + 1 for s in steps],
                    y=[history[s][e] for s in steps],
                    mode="lines",
                    stackgroup=f"s{col}",
                    line={"width": 0.5, "color": color(e)},
                    fillcolor=color(e),
                    fillpattern={"shape": expert_pattern(e), "fgcolor": "#FFFFFF"},
                    name=f"E{e}",
                    showlegend=False,
                    hovertemplate=f"{name}<br>step %{{x}}<br>E{e}: %{{y:.3f}}<extra></extra>",
                ),
                row=2,
                col=col,
            )
        fig.update_yaxes(range=[0, 1], row=1, col=col)
        fig.update_yaxes(range=[0, 1], row=2, col=col)
        fig.update_xaxes(title={"text": "training step"}, row=2, col=col)
    fig.update_yaxes(title={"text": "final share"}, row=1, col=1)
    fig.update_yaxes(title={"text": "share per step"}, row=2, col=1)
    layout = base_layout(title=title, height=height * 1.4)
    layout["margin"] = {**layout["margin"], "t": 84}  # the figure's title above the subplot titles
    layout["annotations"] = list(fig.layout.annotations)  # keep the subplot titles
    fig.update_layout(layout)
    return fig


def seed_sweep(
    max_loads: Mapping[str, Sequence[float]],
    num_experts: int,
    *,
    balanced: float | None = None,
    seeds: Sequence[int] | None = None,
    title: str | None = None,
    height: int = 300,
) -> go.Figure:
    """Top expert share of every seed, one row of dots per method, with the "balanced" bound
    (`balanced`, default 1.5/E as moe_core.collapse_verdict) as a dashed line."""
    traces = [
        trace(
            "scatter",
            x=list(values),
            y=[name] * len(values),
            mode="markers",
            name=name,
            showlegend=False,
            marker={"size": 12, "color": color(i), "line": {"width": 1, "color": TEXT}, "opacity": 0.8},
            customdata=list(seeds) if seeds is not None else list(range(len(values))),
            hovertemplate=f"{name}<br>seed %{{customdata}}: max share %{{x:.3f}}<extra></extra>",
        )
        for i, (name, values) in enumerate(max_loads.items())
    ]
    limit = balanced if balanced is not None else 1.5 / num_experts
    line = {
        "type": "line",
        "yref": "paper",
        "x0": limit,
        "x1": limit,
        "y0": 0,
        "y1": 1,
        "line": {"color": TEXT, "dash": "dash", "width": 1.5},
    }
    note = {
        "yref": "paper",
        "x": limit,
        "y": 1.0,
        "text": f"balanced ≤ {limit:.3g}",
        "showarrow": False,
        "xanchor": "left",
        "yanchor": "bottom",
        "font": {"size": 11, "color": TEXT},
    }
    # Method names above their rows, not as tick labels: as tick labels they took two thirds of a
    # phone's width and left the dots a strip 60 px wide (issue 18).
    names = [
        {"xref": "paper", "x": 0.0, "y": name, "yshift": 10, "text": name, "showarrow": False,
         "xanchor": "left", "yanchor": "bottom", "font": {"size": 12, "color": TEXT}}
        for name in max_loads
    ]  # fmt: skip
    return figure(
        traces,
        title=title,
        height=height,
        shapes=[line],
        annotations=[note, *names],
        xaxis={"title": {"text": "top expert's share (1 = collapse)"}, "range": [0, 1.02]},
        yaxis={"type": "category", "autorange": "reversed", "showticklabels": False},
    )
