"""Colours, layout and number formats shared by every lesson's figures.

Colours come from the Okabe–Ito palette (Okabe & Ito, "Color Universal Design", 2008), chosen to
stay distinguishable under the common forms of colour blindness; sequential scales (heatmaps)
use a single hue from white to Okabe–Ito blue, which reads the same for every viewer. Every figure
must also offer its numbers as a table or as hover text, so colour never carries meaning alone.
"""

from __future__ import annotations

import copy
import os
import re
import textwrap
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import plotly.graph_objects as go

# Okabe–Ito, in the order the figures use them (black last: it is for text and outlines).
OKABE_ITO: dict[str, str] = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "bluish_green": "#009E73",
    "vermillion": "#D55E00",
    "sky_blue": "#56B4E9",
    "reddish_purple": "#CC79A7",
    "yellow": "#F0E442",
    "black": "#000000",
}
PALETTE: tuple[str, ...] = tuple(OKABE_ITO.values())  # categorical: expert e gets PALETTE[e % 8]
GREY = "#8A94A3"  # neutral (inactive, "not chosen")
TEXT = "#1B2430"  # the theme's text colour (.streamlit/config.toml)
# Tick labels and axis titles: Streamlit's chart theme draws them in #808495, 3.7:1 on white,
# under WCAG's 4.5:1 for text. This muted shade of TEXT is 7.2:1 (issue 18). GREY (3.1:1) is
# for marks, never for text.
TEXT_MUTED = "#4F5864"
# Sequential scale for weights in [0, 1]: white (0) to Okabe–Ito blue (1).
SEQUENTIAL: list[list[float | str]] = [[0.0, "#FFFFFF"], [0.35, "#B7D3E9"], [1.0, "#0072B2"]]


def color(i: int) -> str:
    """The i-th categorical colour (wraps around after 8)."""
    return PALETTE[i % len(PALETTE)]


def base_layout(*, title: str | None = None, height: int = 360) -> dict:
    """MoE Lab's calm figure layout as a plain dict (no template: Streamlit's theme applies)."""
    return {
        "title": {"text": title, "x": 0.0, "xanchor": "left"} if title else None,
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 48 if title else 16, "b": 10},
        "font": {"family": "sans-serif", "size": 13, "color": TEXT},
        "hoverlabel": {"font": {"size": 13}},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0.0},
        "plot_bgcolor": "#FFFFFF",
        "paper_bgcolor": "#FFFFFF",
    }


# Plotly validates every property of every trace as it is built: for the lessons' figures that
# was 80-90 % of the build (dispatch_tracks: 8 ms validated, 1.5 ms not; plotly 7.1, measured),
# on every slider move. The builders below therefore make traces as plain dicts and figures with
# Plotly's `_validate=False`; the test suite sets MOE_LAB_CHECK_FIGURES=1 (tests/conftest.py),
# which validates every figure any test builds, so a misspelt property still fails loudly.
CHECK_FIGURES = os.environ.get("MOE_LAB_CHECK_FIGURES") == "1"


_UNDERSCORED = ("error_x", "error_y", "error_z")  # the only trace properties with "_" in their name


def trace(kind: str, **props: Any) -> dict:
    """A trace as a dict, e.g. `trace("bar", x=..., marker_color=...)`; Plotly's "magic underscore"
    names are expanded (`marker_line_width=1` -> {"marker": {"line": {"width": 1}}}), as Plotly
    does, keeping `error_x`/`error_y`/`error_z` whole."""
    out: dict[str, Any] = {"type": kind}
    for key, value in props.items():
        head = next((u for u in _UNDERSCORED if key == u or key.startswith(u + "_")), None)
        parts = [head, *key[len(head) + 1:].split("_")] if head else key.split("_")
        *path, leaf = [p for p in parts if p]
        node = out
        for part in path:
            node = node.setdefault(part, {})
        if isinstance(value, dict) and isinstance(node.get(leaf), dict):
            node[leaf] = {**node[leaf], **value}
        else:
            node[leaf] = value
    return out


# --- margins ----------------------------------------------------------------------------------
# Plotly.js draws a figure, finds that tick labels, axis titles or a colour bar need more margin
# than the layout gives ("automargin"), and then draws the whole figure a second time. With the
# 10 px base margins every lesson figure took that second pass, on every slider move: about a
# third of each chart's browser time (profiled: Plots.doAutoMargin, 84 of 206 ms per move of
# Lesson 3's batch slider). `reserve_margins` asks up front for about what the labels need, so
# the first pass fits; automargin stays on, so a label longer than the estimate still fits
# (at the old price of a second pass).
CHAR_PX = 7.0  # mean width of a label character at the 13 px figure font (fitted to the lessons in Chromium)
TICK_PX = 22  # height of a row of x tick labels, with its standoff
LEGEND_ROW_PX = 40  # one row of a horizontal legend outside the plot, with its gap
SLACK_PX = 8  # a pass short by 2 px costs as much as one short by 50
# Short y tick labels take more than CHAR_PX a character (digits and capitals: token labels such as
# "12 coach", "DeepSeek-V3"); long ones less. Measured in Chromium (each chart's y.automargin push),
# the left margin needed 5-10 px more than 12 + CHAR_PX per character + SLACK_PX for labels of 5-11
# characters (4 of Lesson 2's 9 charts were drawn twice for it) and 7-15 px less for 21-28.
LEFT_SLACK_PX = 20
X_SLACK_PX = 10  # the same under a row of x tick labels: 4 px left Lesson 3's hero and grid 5 px short
TITLE_PX = 30  # an axis title's line, with its standoff
Y_TOP_PX = 20  # over the plot, for the top y tick label's upper half (Plotly pushed 19 px: Lesson 4's bars)


def _chars(text: Any) -> int:
    lines = re.sub(r"<(?!br)[^>]*>", "", str(text)).split("<br>")
    return max((len(line) for line in lines), default=0)


def _axis(layout: dict, name: str) -> dict:
    axis = layout.get(name)
    return axis if isinstance(axis, dict) else {}


def _tick_chars(data: Sequence[Any], axis: dict, ref: str) -> int:
    """Characters in the widest tick label of axis `ref` ("x", "y2", ...; 0 when it shows none)."""
    if axis.get("visible") is False or axis.get("showticklabels") is False:
        return 0
    if axis.get("ticktext") is not None:
        return max((_chars(t) for t in axis["ticktext"]), default=0)
    letter = ref[0]
    labels = [v for tr in data if tr.get(f"{letter}axis", letter) == ref
              for v in (tr.get(letter) if tr.get(letter) is not None else ()) if isinstance(v, str)]
    return max((_chars(v) for v in labels), default=0) if labels else 5  # numbers: "0.125", "1,000"


def _axis_refs(data: Sequence[Any], layout: dict, letter: str) -> list[str]:
    """Every `letter` axis the figure has, as trace references ("x", "x2", ...): subplots too."""
    refs = {letter}
    for key in layout:
        if _AXIS_NAME.fullmatch(key) and key[0] == letter:
            refs.add(letter + key[len(letter) + 4:])
    for tr in data:
        ref = tr.get(f"{letter}axis")
        if isinstance(ref, str) and ref[:1] == letter:
            refs.add(ref)
    return sorted(refs)


def _layout_axis(layout: dict, ref: str) -> dict:
    return _axis(layout, f"{ref[0]}axis{ref[1:]}")


def top_margin_floor(data: Sequence[Any], layout: dict) -> int:
    """The least top margin a figure can have (a lifted title gives its room back down to this):
    with y tick labels, a tick at the top of the range hangs its label above the plot by half
    its height, and Plotly would redraw the figure to make room (Y_TOP_PX)."""
    data = [tr if isinstance(tr, dict) else tr.to_plotly_json() for tr in data]
    for ref in _axis_refs(data, layout, "y"):
        axis = _layout_axis(layout, ref)
        if axis.get("visible") is not False and _tick_chars(data, axis, ref):
            return Y_TOP_PX
    return 0


def _title_px(axis: dict) -> int:
    title = axis.get("title")
    text = title.get("text") if isinstance(title, dict) else title
    return TITLE_PX if text and axis.get("visible") is not False else 0


def _colorbar_px(data: Sequence[Any]) -> int:
    """Width a heatmap's colour bar takes on the right (0 without one)."""
    widest = 0
    for tr in data:
        if tr.get("type") != "heatmap" or tr.get("showscale") is False:
            continue
        bar = tr.get("colorbar") or {}
        title = bar.get("title")
        text = title.get("text") if isinstance(title, dict) else title
        widest = max(widest, int(bar.get("thickness", 30)) + 30 + CHAR_PX * max(4, _chars(text or "")))
    return int(widest)


def reserve_margins(data: Sequence[Any], layout: dict) -> dict:
    """`layout["margin"]` raised to what the axes' labels and a colour bar will need."""
    margin = dict(layout.get("margin") or {})
    data = [tr if isinstance(tr, dict) else tr.to_plotly_json() for tr in data]
    # Subplots: each axis pushes its own side; the widest y labels and the tallest x labels (the
    # bottom grid's, which carries the axis title) set the margin.
    left, right, x_px, side = 0.0, 0.0, 0, "b"
    for ref in _axis_refs(data, layout, "y"):
        y = _layout_axis(layout, ref)
        if y.get("visible") is not False:
            px = 12 + CHAR_PX * _tick_chars(data, y, ref) + _title_px(y)
            if y.get("side") == "right":  # a second y axis on the right pushes that side
                right = max(right, px)
            else:
                left = max(left, px)
    for ref in _axis_refs(data, layout, "x"):
        x = _layout_axis(layout, ref)
        if x.get("visible") is not False:
            x_px = max(x_px, (TICK_PX if _tick_chars(data, x, ref) else 0) + _title_px(x))
            side = "t" if x.get("side") == "top" else side
    # A few pixels to spare on each side the labels push (LEFT_SLACK_PX, X_SLACK_PX: measured).
    need = {"l": int(left) + LEFT_SLACK_PX if left else 0, side: int(x_px) + 12 + X_SLACK_PX if x_px else 0,
            # The last x tick label hangs past the plot's right edge by half its width.
            "r": max(_colorbar_px(data) + 10 + SLACK_PX // 2, 26 if x_px else 0,
                     int(right) + LEFT_SLACK_PX if right else 0)}
    need["t"] = max(need.get("t", 0), top_margin_floor(data, layout))
    legend = legend_side(data, layout)
    if legend == "below":  # under the x axis, or alone when the axis is on top
        need["b"] = need.get("b", 0) + LEGEND_ROW_PX
    elif legend == "above" and not layout.get("title"):
        need["t"] = max(need.get("t", 0), LEGEND_ROW_PX + 6)
    for key, px in need.items():
        margin[key] = max(int(margin.get(key, 0)), px)
    return margin


def legend_side(data: Sequence[Any], layout: dict) -> str | None:
    """Where a horizontal legend sits outside the plot ("above", "below"), if one is shown:
    Plotly shows it for two or more named traces (or when the layout asks)."""
    if layout.get("showlegend") is False:
        return None
    entries = sum(1 for tr in data if tr.get("showlegend") is not False and tr.get("type") != "heatmap")
    if entries < (1 if layout.get("showlegend") else 2):
        return None
    legend = layout.get("legend") if isinstance(layout.get("legend"), dict) else {}
    if legend.get("orientation") != "h":
        return None
    y = legend.get("y", 1.02)
    return "above" if y >= 1 else "below" if y < 0 else None


_AXIS_NAME = re.compile(r"[xy]axis\d*")


def readable_axes(data: Sequence[Any], layout: dict) -> dict:
    """The axes of `layout` (every x/y axis it names or a trace uses, subplots included) with
    tick labels in TEXT_MUTED and axis titles in TEXT, unless the figure chose a colour itself;
    returned as layout keys to merge in."""
    names = {k for k in layout if _AXIS_NAME.fullmatch(k)} | {"xaxis", "yaxis"}
    for tr in data:
        for letter in "xy":
            ref = tr.get(f"{letter}axis") if isinstance(tr, dict) else None
            if isinstance(ref, str) and ref[1:].isdigit():
                names.add(f"{letter}axis{ref[1:]}")
    out = {}
    for name in names:
        axis = layout.get(name)
        axis = dict(axis) if isinstance(axis, dict) else {}
        axis["tickfont"] = {"color": TEXT_MUTED, **(axis.get("tickfont") or {})}
        title = axis.get("title")
        if isinstance(title, str):
            axis["title"] = {"text": title, "font": {"color": TEXT}}
        elif isinstance(title, dict):
            axis["title"] = {**title, "font": {"color": TEXT, **(title.get("font") or {})}}
        out[name] = axis
    return out


def wrap_label(text: str, chars: int = 13) -> str:
    """`text` broken at spaces into lines of at most `chars` characters, joined by Plotly's <br>.

    Why: Plotly never wraps a title or annotation. Side-by-side panel titles are centred over
    panels a third of a phone's width wide (about 100 px, 14 characters at 13 px), so unwrapped
    they print over each other at 390 px (issue 18).
    """
    return "<br>".join(textwrap.wrap(text, chars, break_long_words=False)) or text


def unchecked_figure(data: Sequence[Any], layout: dict) -> go.Figure:
    """`go.Figure(data, layout)` without Plotly's per-property validation (see CHECK_FIGURES),
    with margins reserved for its labels (see reserve_margins).

    NOTE: an empty template. Without one Plotly copies its default template into every figure
    (half of a 14 kB dispatch chart's spec, 0.9 ms of build and to_dict), and Streamlit's chart
    theme replaces that template in the browser anyway.
    """
    layout = _finished_layout([tr if isinstance(tr, dict) else tr.to_plotly_json() for tr in data], layout)
    if CHECK_FIGURES:
        return go.Figure(data=list(data), layout=layout)
    return go.Figure(data=list(data), layout=layout, _validate=False)


FigureSpec = dict[str, Any]  # {"data": [trace dicts], "layout": {...}}: what Plotly sends the browser


def figure_spec(data: Sequence[dict], layout: dict) -> FigureSpec:
    """What `unchecked_figure(data, layout).to_dict()` gives, without making Plotly's objects.

    For charts redrawn on every move of a slider: `go.Figure` turns each trace dict into a trace
    object and deep-copies it back (1.4 ms of the 2.0 ms Lesson 3's dispatch overview takes to
    build; Lesson 3's T slider redraws six charts). `show_chart` takes the spec as it is. With
    CHECK_FIGURES (the test suite) the spec goes through Plotly, validated, so a misspelt
    property still fails; tests/app/course/test_figure_spec.py checks both ways give equal specs.
    """
    if CHECK_FIGURES:
        return unchecked_figure(data, layout).to_dict()
    return {"data": list(data), "layout": _finished_layout(data, layout)}


def _finished_layout(data: Sequence[dict], layout: dict) -> dict:
    """`layout` with an empty template, readable axes and margins reserved for its labels."""
    return {"template": {}, **layout, **readable_axes(data, layout), "margin": reserve_margins(data, layout)}


def figure(data: Sequence[Any], *, title: str | None = None, height: int = 360, **layout: Any) -> go.Figure:
    """Build a figure in one step: traces + `base_layout` merged with `layout` (one level deep).

    NOTE: passing the whole layout to the constructor is ~7x faster than `fig.update_layout` /
    `update_xaxes` calls after the fact (4 ms vs 28 ms per figure, plotly 7.1, measured): it
    matters on every slider move.
    """
    return unchecked_figure(data, _with_base(title, height, layout))


def _with_base(title: str | None, height: int, layout: dict) -> dict:
    """`base_layout` with `layout`'s keys merged in, one level deep."""
    merged = base_layout(title=title, height=height)
    for key, value in layout.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def style(fig: go.Figure, *, title: str | None = None, height: int = 360, **layout: Any) -> go.Figure:
    """Apply `base_layout`, merged with `layout`, to an existing figure in place (slower than
    `figure`; for convenience), with margins reserved for its labels (see reserve_margins)."""
    fig.update_layout(_with_base(title, height, layout))
    spec = fig.to_plotly_json()
    fig.update_layout(margin=reserve_margins(spec["data"], spec["layout"]),
                      **readable_axes(spec["data"], spec["layout"]))
    return fig


def human_flops(n: float) -> str:
    """FLOPs with SI units, e.g. 2.52e10 -> "25.2 GFLOPs" (avoids the "25.2B" that reads as parameters)."""
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            value = n / scale
            return f"{value:.3g} {prefix}FLOPs" if value < 100 else f"{value:.0f} {prefix}FLOPs"
    return f"{n:.3g} FLOPs"


def human_count(n: float, unit: str = "") -> str:
    """1.29e10 -> "12.9B"; 4.5e6 -> "4.5M"; small numbers unchanged (with `unit` appended)."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            value = n / scale
            text = f"{value:.3g}" if value < 100 else f"{value:.0f}"
            return f"{text}{suffix}{unit}"
    return f"{n:.3g}{unit}"


# --- Layouts shared by the lessons' figure builders ---------------------------------------------

LEGEND_RIGHT = {"x": 1.0, "xanchor": "right", "y": 1.02, "yanchor": "bottom"}  # clear of a left title


@lru_cache(maxsize=4)
def _base(has_title: bool) -> dict:
    layout = style(go.Figure(), title="title" if has_title else None).layout.to_plotly_json()
    layout.pop("template", None)
    layout["margin"] = base_layout(title="title" if has_title else None)["margin"]  # reserved per figure
    return layout


def styled_layout(title: str | None, height: int, **extra: object) -> dict:
    """`style`'s layout as a dict (title, height and `extra` keys merged in), template-free."""
    layout = copy.deepcopy(_base(title is not None))
    if title is not None:
        layout["title"]["text"] = title
    layout["height"] = height
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(layout.get(key), dict):
            layout[key] = {**layout[key], **value}
        else:
            layout[key] = value
    return layout


def hline(y: float, color_: str = GREY, xref: str = "paper", yref: str = "y") -> dict:
    """A dashed horizontal line across the plot, as a layout shape (cheaper than add_hline)."""
    return {"type": "line", "xref": xref, "x0": 0, "x1": 1, "yref": yref, "y0": y, "y1": y,
            "line": {"color": color_, "dash": "dash", "width": 1.5}}  # fmt: skip
