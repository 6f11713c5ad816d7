"""Lesson 2 figures: the token x expert router heatmap, one token's stages, and load bars.

Pure functions: arrays in, a Plotly spec out (`course.figures.figure_spec`: the dict Plotly would
send, made without Plotly's objects; no Streamlit, no model), so each is tested alone and built
once per slider move. Every number a figure encodes as colour or height is also in its hover
text, and the lesson offers the same numbers as a table.

NOTE (speed): each figure is built in one call from plain dicts, never through `go.Figure` in the
app (measured here, `update_layout` after construction costs ~10 ms of validation per figure and
`add_hline` ~4 ms, against ~1.5 ms for one `go.Figure(data, layout)` and ~0.05 ms for the spec);
the course's shared look comes from `course.figures.style`, applied once and cached
(`styled_layout`). Its Plotly template is left out: Streamlit's chart theme replaces the template
in the browser anyway (checked in Chromium: the rendered figure carries Streamlit's template), so
sending it would only cost time.

Shape legend: T tokens, E experts, K chosen experts per token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lessons.course.figures import (
    GREY,
    LEGEND_RIGHT,
    OKABE_ITO,
    SEQUENTIAL,
    TEXT,
    FigureSpec,
    color,
    figure_spec,
    hline,
    styled_layout,
    trace,
    wrap_label,
)

# Logits are signed: blue below zero, white at zero, orange above (both Okabe–Ito hues).
DIVERGING: list[list[float | str]] = [[0.0, OKABE_ITO["blue"]], [0.5, "#FFFFFF"], [1.0, OKABE_ITO["orange"]]]
MAX_HEATMAP_TOKENS = 40  # beyond this the rows get too thin to read; the lesson truncates
def token_labels(tokens: Sequence[str]) -> list[str]:
    """Row labels that stay unique when a word repeats: "0 the", "1 chef", "2 the"."""
    return [f"{i} {w}" for i, w in enumerate(tokens)]


def _ranks_and_gates(shape: tuple[int, int], topk_ids: np.ndarray, weights: np.ndarray | None):
    rank = np.full(shape, -1)
    gate = np.zeros(shape)
    rows = np.arange(shape[0])
    for k in range(topk_ids.shape[1]):
        rank[rows, topk_ids[:, k]] = k
        if weights is not None:
            gate[rows, topk_ids[:, k]] = weights[:, k]
    return rank, gate


def router_heatmap(
    values: np.ndarray,
    tokens: Sequence[str],
    topk_ids: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    kind: str = "probability",
    title: str | None = None,
) -> FigureSpec:
    """Token x expert heatmap of router probabilities (or logits), chosen cells outlined.

    values [T, E]; topk_ids [T, K] (best first); weights [T, K] optional gate weights, printed in
    the chosen cells. kind: "probability" (0..1, white to blue) or "logit" (signed, diverging).
    """
    values = np.asarray(values, dtype=float)
    topk_ids = np.asarray(topk_ids, dtype=int).reshape(values.shape[0], -1)
    num_tokens, num_experts = values.shape
    if len(tokens) != num_tokens:
        raise ValueError(f"{len(tokens)} token labels for {num_tokens} rows")
    w = None if weights is None else np.asarray(weights, dtype=float).reshape(topk_ids.shape)
    rank, gate = _ranks_and_gates(values.shape, topk_ids, w)
    labels = token_labels(tokens)
    note = np.where(rank >= 0, np.char.add("chosen, rank ", (rank + 1).astype(str)), "not chosen")
    custom = np.dstack([np.broadcast_to(np.array(labels)[:, None], values.shape), note, gate.round(4)])
    text = np.where(rank >= 0, np.char.mod("%.2f", gate) if w is not None else "●", "")
    name = "p" if kind == "probability" else "logit z"
    gate_line = "<br>gate weight g = %{customdata[2]}" if w is not None else ""
    experts = [f"E{e}" for e in range(num_experts)]
    chosen_t, chosen_e = np.nonzero(rank >= 0)
    heat = trace(
        "heatmap",
        z=values, x=experts, y=list(range(num_tokens)), customdata=custom, text=text,
        texttemplate="%{text}", xgap=2, ygap=2,
        hovertemplate=f"token %{{customdata[0]}} → expert %{{x}}<br>{name} = %{{z:.4f}}<br>"
                      f"%{{customdata[1]}}{gate_line}<extra></extra>",
        colorbar={"title": {"text": "probability" if kind == "probability" else "logit"}, "thickness": 12},
        **_scale(values, kind),
    )  # fmt: skip
    marks = trace(
        "scatter",
        x=[experts[e] for e in chosen_e], y=chosen_t.tolist(), mode="markers", name="chosen (top-k)",
        marker={"symbol": "square-open", "size": 26, "line": {"width": 2.5}, "color": TEXT}, hoverinfo="skip",
    )  # fmt: skip
    layout = styled_layout(
        title, 150 + 30 * num_tokens,
        # Expert labels on top say "expert"; an axis title there would hit the figure's title.
        xaxis={"side": "top", "type": "category"},
        yaxis={"autorange": "reversed", "tickvals": list(range(num_tokens)), "ticktext": labels},
        legend={"y": -0.01, "yanchor": "top", "x": 0.0},  # below the rows, clear of the labels
        margin={"t": 84 if title else 40},  # room for the title above the expert labels
    )  # fmt: skip
    return figure_spec([heat, marks], layout)


def _scale(values: np.ndarray, kind: str) -> dict:
    if kind == "probability":
        return {"colorscale": SEQUENTIAL, "zmin": 0.0, "zmax": 1.0}
    if kind == "logit":
        bound = float(np.abs(values).max()) if values.size else 1.0
        return {"colorscale": DIVERGING, "zmin": -bound, "zmax": bound}
    raise ValueError(f"kind must be 'probability' or 'logit', got {kind!r}")


def stage_bars(
    probs: np.ndarray, topk_ids: Sequence[int], weights: Sequence[float], *, title: str | None = None
) -> FigureSpec:
    """One token: softmax probability of every expert beside the gate weight of the chosen ones."""
    probs = np.asarray(probs, dtype=float)
    experts = [f"E{e}" for e in range(probs.size)]
    gate = np.zeros_like(probs)
    gate[list(topk_ids)] = list(weights)
    bars = [
        trace("bar", x=experts, y=probs, name="softmax probability p", marker_color=OKABE_ITO["sky_blue"],
              text=[f"{p:.3f}" for p in probs], textposition="outside",
              hovertemplate="expert %{x}: p = %{y:.4f}<extra></extra>"),
        trace("bar", x=experts, y=gate, name="gate weight g (chosen only)",
              marker_color=OKABE_ITO["vermillion"], marker_pattern_shape="/",
              text=[f"{g:.3f}" if g else "" for g in gate],
              textposition="outside", hovertemplate="expert %{x}: g = %{y:.4f}<extra></extra>"),
    ]  # fmt: skip
    layout = styled_layout(title, 320, barmode="group", legend=LEGEND_RIGHT,
                           yaxis={"range": [0, 1.15], "title": {"text": "value"}})  # fmt: skip
    return figure_spec(bars, layout)


def _expert_bars(counts: np.ndarray, label: str, unit: str, **axes: str) -> dict:
    total = counts.sum()
    return trace(
        "bar",
        x=[f"E{e}" for e in range(counts.size)], y=counts, showlegend=False,
        marker_color=[color(e) for e in range(counts.size)], text=[f"{int(c)}" for c in counts],
        textposition="outside", customdata=counts / total if total else counts,
        hovertemplate=f"{label}expert %{{x}}: %{{y}} {unit} (%{{customdata:.1%}} of all)<extra></extra>",
        **axes,
    )  # fmt: skip


def load_bars(counts: Sequence[int], *, title: str | None = None, height: int = 260) -> FigureSpec:
    """Routed slots per expert with the perfectly balanced level as a dashed line."""
    counts = np.asarray(counts, dtype=float)
    shapes = [hline(counts.sum() / counts.size)] if counts.size else []
    note = {
        "text": "dashed: balanced",
        "xref": "paper",
        "yref": "paper",
        "x": 1,
        "y": 1.02,
        "xanchor": "right",
        "yanchor": "bottom",
        "showarrow": False,
        "font": {"color": GREY, "size": 12},
    }
    layout = styled_layout(title, height, shapes=shapes, annotations=[note],
                           yaxis={"title": {"text": "slots"}, "rangemode": "tozero"})  # fmt: skip
    return figure_spec([_expert_bars(counts, "", "slots")], layout)


def comparison_loads(loads: Mapping[str, Sequence[int]], *, title: str | None = None) -> FigureSpec:
    """Per-expert load bars for several routing methods side by side (shared y axis)."""
    names = list(loads)
    gap, n = 0.04, len(names)
    width = (1 - gap * (n - 1)) / n
    traces, shapes, annotations = [], [], []
    layout_axes: dict[str, dict] = {}
    for i, name in enumerate(names):
        suffix = "" if i == 0 else str(i + 1)
        counts = np.asarray(loads[name], dtype=float)
        traces.append(_expert_bars(counts, f"{name}<br>", "tokens", xaxis=f"x{suffix}", yaxis="y"))
        x0 = i * (width + gap)
        layout_axes[f"xaxis{suffix}"] = {"domain": [x0, x0 + width], "anchor": "y"}
        if counts.size:
            shapes.append({**hline(counts.sum() / counts.size), "xref": f"x{suffix} domain"})
        annotations.append({"text": wrap_label(name, 9), "xref": "paper", "yref": "paper",
                            "x": x0 + width / 2, "y": 1.0, "xanchor": "center", "yanchor": "bottom",
                            "showarrow": False})
    y_axis = {"title": {"text": "tokens processed"}, "rangemode": "tozero"}
    lines = max((wrap_label(name, 9).count("<br>") + 1 for name in names), default=1)
    top = (48 if title else 12) + 17 * lines  # the figure title, then the panel titles under it
    layout = styled_layout(title, 280 + 17 * lines, shapes=shapes, annotations=annotations, yaxis=y_axis,
                           margin={"t": top}, **layout_axes)  # fmt: skip
    return figure_spec(traces, layout)


def experts_per_token_bars(histograms: Mapping[str, Sequence[int]], *,
                           title: str | None = None) -> FigureSpec:  # fmt: skip
    """How many tokens got 0, 1, 2, ... experts, one bar group per routing method."""
    bars = [
        trace("bar", x=list(range(len(hist))), y=list(hist), name=name, marker_color=color(i),
              text=[str(h) if h else "" for h in hist], textposition="outside",
              hovertemplate=f"{name}: %{{y}} tokens with %{{x}} experts<extra></extra>")
        for i, (name, hist) in enumerate(histograms.items())
    ]  # fmt: skip
    layout = styled_layout(title, 280, barmode="group", legend=LEGEND_RIGHT,
                           xaxis={"title": {"text": "experts per token"}, "dtick": 1},
                           yaxis={"title": {"text": "tokens"}, "rangemode": "tozero"})  # fmt: skip
    return figure_spec(bars, layout)


def share_heatmap(share: Sequence[Sequence[float]], rows: Sequence[str], *, title: str | None = None,
                  height: int | None = None) -> FigureSpec:  # fmt: skip
    """Rows (genres or token classes) x experts: the share of each row's tokens whose top-1 expert is
    that column (rows sum to 1). An even 1/E everywhere means the row tells nothing about the expert."""
    values = np.asarray(share, dtype=float)
    if values.ndim != 2 or values.shape[0] != len(rows):
        raise ValueError(f"share must be [len(rows), E], got {values.shape} for {len(rows)} rows")
    experts = [f"E{e}" for e in range(values.shape[1])]
    heat = trace(
        "heatmap", z=values, x=experts, y=list(rows), text=np.char.mod("%.2f", values),
        texttemplate="%{text}", xgap=2, ygap=2, colorscale=SEQUENTIAL, zmin=0.0, zmax=max(0.5, values.max()),
        hovertemplate="%{y} → expert %{x}: %{z:.1%} of its tokens<extra></extra>",
        colorbar={"title": {"text": "share"}, "thickness": 12},
    )  # fmt: skip
    layout = styled_layout(title, height or 120 + 34 * len(rows),
                           xaxis={"side": "top", "type": "category"},
                           yaxis={"autorange": "reversed", "type": "category"},
                           margin={"t": 84 if title else 40})  # fmt: skip
    return figure_spec([heat], layout)
