"""Lesson 4 figures: expert load bars, load over time, the loss curve, the domain × expert heatmap,
and side-by-side comparisons of two runs or several balancing methods.

Pure functions: lists in, a `go.Figure` out (no Streamlit, no model). They are rebuilt a few
times a second while a run trains, so each one is built in a single `figure(...)` call (see
lessons/course/figures.py) and long histories are thinned to at most MAX_POINTS steps per trace.
Expert e always gets colour `color(e)` (Okabe–Ito, colour-blind safe); every number a colour or a
height encodes is also in the hover text.

Shape legend: S training steps, E experts, M domains.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from lessons.course.figures import (
    GREY,
    OKABE_ITO,
    PALETTE,
    SEQUENTIAL,
    TEXT,
    color,
    figure,
    trace,
)

MAX_POINTS = 300  # steps drawn per trace; longer runs are thinned (the last step always kept)


def _figure_with_legend(data: Sequence, *, title: str | None, height: int, **layout) -> go.Figure:
    """`figure(...)` with the legend above the plot: the title is pinned to the top of the figure
    and the top margin grows, or the two would overlap."""
    fig = figure(data, title=None, height=height, margin={"t": 78 if title else 40}, **layout)
    if title:
        fig.layout.title = {
            "text": title,
            "x": 0.0,
            "xanchor": "left",
            "y": 0.98,
            "yref": "container",
            "yanchor": "top",
        }
    return fig


DEAD_FRACTION = 0.1  # of the fair share 1/E, as moe_core.metrics
_TICKS = [0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 3, 5, 10, 20, 30, 50, 100]
LOG_TICKS = {"tickvals": _TICKS, "ticktext": [f"{v:g}" for v in _TICKS]}  # no crowded minor labels


def thin(num_steps: int, max_points: int = MAX_POINTS) -> list[int]:
    """Indices 0..S-1 to draw: all of them, or an even subset that keeps the first and the last."""
    if num_steps <= max_points:
        return list(range(num_steps))
    stride = (num_steps - 1) / (max_points - 1)
    return sorted({round(i * stride) for i in range(max_points)} | {num_steps - 1})


def expert_pattern(e: int) -> str:
    """Experts 8..15 reuse the 8 Okabe–Ito colours, so they are hatched as well."""
    return "/" if e >= len(PALETTE) else ""


def expert_names(num_experts: int) -> list[str]:
    return [f"E{e}" for e in range(num_experts)]


def load_bars(
    load: Sequence[float], *, title: str | None = None, height: int = 300, balanced: float | None = None
) -> go.Figure:
    """Each expert's share of routed slots [E], a dashed line at the fair share 1/E, dead ones grey;
    `balanced` adds a dotted line at the verdict rule's bound (moe_core.collapse_verdict)."""
    num_experts = len(load)
    fair = 1 / num_experts
    dead = [v < DEAD_FRACTION * fair for v in load]
    bars = trace(
        "bar",
        x=expert_names(num_experts),
        y=list(load),
        marker={
            "color": [GREY if d else color(e) for e, d in enumerate(dead)],
            "pattern": {"shape": [expert_pattern(e) for e in range(num_experts)]},
        },
        text=["dead" if d else f"{v:.2f}" for v, d in zip(load, dead, strict=True)],
        textposition="outside",
        hovertemplate="expert %{x}<br>share %{y:.3f}<extra></extra>",
        showlegend=False,
    )
    top = max(0.3, min(1.15, max(load) * 1.2)) if num_experts else 1.0  # room for the value labels
    shapes, notes = [_hline(fair)], [_hline_label(fair, f"fair<br>1/{num_experts}")]
    if balanced is not None:  # the bound's label above its line, the fair share's below its own
        shapes.append(_hline(balanced, dash="dot"))
        notes.append(_hline_label(balanced, "balanced<br>bound") | {"yanchor": "bottom"})
        notes[0]["yanchor"] = "top"
    return figure(
        [bars],
        title=title,
        height=height,
        yaxis={"title": {"text": "share of routed slots"}, "range": [0, top]},
        xaxis={"type": "category"},
        shapes=shapes,
        annotations=notes,
        margin={"r": 64},
    )


def _hline(y: float, dash: str = "dash") -> dict:
    return {
        "type": "line",
        "xref": "paper",
        "x0": 0,
        "x1": 1,
        "y0": y,
        "y1": y,
        "line": {"color": TEXT, "dash": dash, "width": 1.5},
    }


def _hline_label(y: float, text: str) -> dict:
    # In the right margin, clear of the bars and of their value labels.
    return {
        "xref": "paper",
        "x": 1.0,
        "y": y,
        "text": text,
        "showarrow": False,
        "xanchor": "left",
        "yanchor": "middle",
        "align": "left",
        "font": {"size": 11, "color": TEXT},
    }


def _vline(step: int, text: str) -> tuple[dict, dict]:
    line = {
        "type": "line",
        "yref": "paper",
        "x0": step,
        "x1": step,
        "y0": 0,
        "y1": 1,
        "line": {"color": TEXT, "dash": "dot", "width": 2},
    }
    label = {
        "yref": "paper",
        "x": step,
        "y": 1,
        "text": text,
        "showarrow": False,
        "xanchor": "left",
        "yanchor": "top",
        "bgcolor": "rgba(255,255,255,0.8)",
        "font": {"size": 11, "color": TEXT},
    }
    return line, label


def _span(first: int, last: int, text: str) -> tuple[dict, dict, dict]:
    """A thick bar along the top of the plot over steps first..last, labelled under its start: where
    the verdict rule fired. (A shaded band would grey the stacked loads it covers.) White inside a
    dark outline, so it stands out on any expert's colour, black E7 included."""
    bar = {
        "type": "line",
        "name": "collapse",
        "yref": "paper",
        "x0": first,
        "x1": last,
        "y0": 1,
        "y1": 1,
        "line": {"color": TEXT, "width": 10},
        "layer": "above",
    }
    inner = bar | {"name": "collapse-inner", "line": {"color": "#FFFFFF", "width": 5}}
    label = {
        "yref": "paper",
        "x": first,
        "y": 0.97,
        "text": text,
        "showarrow": False,
        "xanchor": "left",
        "yanchor": "top",
        "bgcolor": "rgba(255,255,255,0.85)",
        "font": {"size": 11, "color": TEXT},
    }
    return bar, inner, label


def _marks(
    switch_step: int | None,
    switch_label: str,
    at_step: int | None,
    spans: Sequence[tuple[int, int]],
    x_end: int,
) -> tuple[list[dict], list[dict]]:
    shapes, notes = [], []
    labelled = None  # the step of the last span that got its "collapsed" label
    for first, last in spans:
        bar, inner, label = _span(first, last, "collapsed")
        shapes += [bar, inner]
        # Spans closer than a third of the run share one label: two labels ~60 px wide printed over
        # each other on a phone, where the plot is ~300 px wide (tests/e2e/test_phone.py).
        if labelled is None or first - labelled >= 0.35 * x_end:
            notes.append(label)
            labelled = first
    for step, text, name in ((switch_step, switch_label, "switch"), (at_step, "replay", "replay")):
        if step is not None:
            line, label = _vline(step, text)
            line["name"] = name
            if step > 0.7 * x_end:  # keep the label inside the plot
                label["xanchor"] = "right"
            shapes.append(line)
            notes.append(label)
    return shapes, notes


def load_over_time(
    load_history: Sequence[Sequence[float]],
    *,
    total_steps: int | None = None,
    switch_step: int | None = None,
    switch_label: str = "balancing on",
    collapse_spans: Sequence[tuple[int, int]] = (),
    at_step: int | None = None,
    title: str | None = None,
    height: int = 320,
) -> go.Figure:
    """Per-expert share per step [S][E], stacked to 1; an even run is E bands of equal width.

    `total_steps` fixes the x range while a run is still training; `switch_step` draws a marker
    where the balancing changed (the recovery experiment); `collapse_spans` shades the steps where
    the verdict rule found a collapse; `at_step` marks the replay slider's step.
    """
    steps = thin(len(load_history))
    xs = [i + 1 for i in steps]
    num_experts = len(load_history[0]) if load_history else 0
    traces = [
        trace(
            "scatter",
            x=xs,
            y=[load_history[i][e] for i in steps],
            name=f"E{e}",
            mode="lines",
            stackgroup="load",
            line={"width": 0.5, "color": color(e)},
            fillcolor=color(e),
            fillpattern={"shape": expert_pattern(e), "fgcolor": "#FFFFFF"},
            hovertemplate=f"step %{{x}}<br>E{e}: %{{y:.3f}}<extra></extra>",
        )
        for e in range(num_experts)
    ]
    x_end = max(total_steps or 0, len(load_history), 1)
    shapes, notes = _marks(switch_step, switch_label, at_step, collapse_spans, x_end)
    return _figure_with_legend(
        traces,
        title=title,
        height=height,
        shapes=shapes,
        annotations=notes,
        hovermode="x unified",
        xaxis={"title": {"text": "training step"}, "range": [1, x_end]},
        yaxis={"title": {"text": "share of routed slots"}, "range": [0, 1]},
        legend={"traceorder": "normal"},
    )


def loss_curve(
    curves: Mapping[str, Sequence[float]],
    *,
    total_steps: int | None = None,
    switch_step: int | None = None,
    spikes: Sequence[int] = (),
    at_step: int | None = None,
    title: str | None = None,
    height: int = 280,
) -> go.Figure:
    """Task loss (MSE) per step for one or more runs, on a log axis (it falls by orders of magnitude).

    `spikes` (steps of the first run) get a marker each: where the verdict rule found a loss spike;
    `at_step` marks the replay slider's step."""
    traces = []
    for i, (name, loss) in enumerate(curves.items()):
        steps = thin(len(loss))
        traces.append(
            trace(
                "scatter",
                x=[s + 1 for s in steps],
                y=[loss[s] for s in steps],
                name=name,
                mode="lines",
                line={
                    "color": (OKABE_ITO["vermillion"], OKABE_ITO["blue"], OKABE_ITO["bluish_green"])[i % 3],
                    "width": 2,
                },
                hovertemplate=f"{name}<br>step %{{x}}<br>loss %{{y:.4f}}<extra></extra>",
            )
        )
    first = next(iter(curves.values()), [])
    if spikes:
        traces.append(
            trace(
                "scatter",
                x=list(spikes),
                y=[first[s - 1] for s in spikes],
                name="loss spike (verdict rule)",
                mode="markers",
                marker={"symbol": "x", "size": 10, "color": TEXT},
                hovertemplate="spike at step %{x}<br>loss %{y:.3g}<extra></extra>",
            )
        )
    longest = max((len(v) for v in curves.values()), default=1)
    shapes, notes = _marks(switch_step, "balancing on", at_step, (), max(total_steps or 0, longest, 1))
    build = _figure_with_legend if len(traces) > 1 else figure
    return build(
        traces,
        title=title,
        height=height,
        shapes=shapes,
        annotations=notes,
        xaxis={"title": {"text": "training step"}, "range": [1, max(total_steps or 0, longest, 1)]},
        yaxis={"title": {"text": "task loss (MSE)"}, "type": "log", **LOG_TICKS},
        showlegend=len(traces) > 1,
    )


def domain_heatmap(
    counts: Sequence[Sequence[int]], *, title: str | None = None, height: int = 330
) -> go.Figure:
    """Domain × expert: each row is the share of a domain's tokens that went to each expert [M][E]."""
    num_experts = len(counts[0]) if counts else 0
    shares = [[c / max(1, sum(row)) for c in row] for row in counts]
    heat = trace(
        "heatmap",
        z=shares,
        x=expert_names(num_experts),
        y=[f"domain {m}" for m in range(len(counts))],
        customdata=[list(row) for row in counts],
        colorscale=SEQUENTIAL,
        zmin=0,
        zmax=1,
        xgap=2,
        ygap=2,
        text=[[f"{v:.2f}" if v >= 0.05 else "" for v in row] for row in shares],
        texttemplate="%{text}",
        hovertemplate="%{y} → expert %{x}<br>share %{z:.3f} (%{customdata} tokens)<extra></extra>",
        colorbar={"title": {"text": "share of domain"}, "thickness": 12},
    )
    return figure(
        [heat],
        title=title,
        height=height,
        xaxis={"type": "category", "title": {"text": "expert"}},
        yaxis={"autorange": "reversed"},
    )
