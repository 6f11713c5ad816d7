"""Every chart of the course goes through `show_chart`: one place for how a figure reaches a learner.

Why one function: a chart must be readable without seeing it and usable with a keyboard. So each
chart carries a one-line text summary of what it shows *now* (computed by the caller from the same
numbers as the figure), optionally its data as a table on request, and no Plotly toolbar — the
toolbar's buttons put dozens of Tab stops between a keyboard learner and the quiz, and on a phone
they sit on top of the chart's title.

The chart's title is lifted out of the figure and printed above it as page text: Plotly never
wraps a title, so on a phone (390 px) long ones ran past the chart's edge and were cut off
(issue 18), while text on the page wraps at any width and is read by screen readers in order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lessons.course.figures import LEGEND_ROW_PX, FigureSpec, legend_side, top_margin_floor
from lessons.course.render import md_escape

# The same for every chart: no mode bar (Tab stops, covers titles on phones), no logo, no scroll
# zoom (a page scroll must scroll the page), responsive width.
PLOTLY_CONFIG: dict[str, Any] = {"displayModeBar": False, "displaylogo": False, "scrollZoom": False,
                                 "responsive": True}  # fmt: skip


TABLE_LABEL = "Show the numbers as a table"
TITLE_PX = 32  # what a one-line Plotly title adds to a figure's top margin (course/figures.py)
_TAG = re.compile(r"<[^>]+>")


def lift_title(fig: go.Figure | FigureSpec) -> tuple[FigureSpec, str]:
    """`fig` as the JSON-ready dict Plotly would send, without its title (top margin given back),
    and the title as plain text. `<br>` in a title becomes a space. `fig` may be a spec already
    (`course.figures.figure_spec`).

    NOTE: read from the figure's own property dicts (`_data`, `_layout`: plotly's storage since 4.0)
    and copied one level deep where changed, not through `fig.to_dict()`: its deep copy, a second
    `go.Figure` to drop the title and Streamlit's re-validation cost ~1.5 ms per chart, and Lesson 3's
    T slider redraws six charts per move (bench/RESULTS.md). The lessons cache figures and share them
    between learners, so neither `fig` nor anything inside it is changed here.
    """
    source = (fig._data, fig._layout) if isinstance(fig, go.Figure) else (fig["data"], fig["layout"])
    # One level of copies: plotly.io.to_json pops each trace's "uid" in place.
    data, layout = [dict(trace) for trace in source[0]], dict(source[1])
    spec = {"data": data, "layout": layout}
    title = layout.get("title")
    text = title.get("text") if isinstance(title, dict) else title
    if not text:
        return spec, ""
    del layout["title"]
    margin = dict(layout.get("margin") or {})
    top = int(margin.get("t", TITLE_PX + 16)) - TITLE_PX
    if legend_side(spec["data"], layout) == "above":
        top = max(top, LEGEND_ROW_PX + 6)
    layout["margin"] = {**margin, "t": max(top, 16, top_margin_floor(spec["data"], layout))}
    return spec, " ".join(_TAG.sub(" ", str(text).replace("<br>", " ")).split())


class _JsonReady(go.Figure):
    """A figure already reduced to its JSON-ready dict: `st.plotly_chart` takes it as a Figure
    (asking only for `to_dict()`), where a plain dict would be rebuilt and re-validated.

    NOTE: deliberately skips `go.Figure.__init__`; nothing but `to_dict` is ever called on it.
    """

    def __init__(self, spec: dict) -> None:  # no super().__init__: that is the point
        self._spec = spec

    def to_dict(self) -> dict:
        return self._spec


def table_key(chart_key: str) -> str:
    """The widget key of a chart's "show the numbers" expander (open it by setting it True)."""
    return f"{chart_key}__numbers"


def show_chart(
    fig: go.Figure | FigureSpec,
    *,
    key: str,
    summary: str,
    data: pd.DataFrame | Callable[[], pd.DataFrame] | None = None,
    **kwargs: Any,
) -> None:
    """Draw `fig` with its text alternative: `summary` (one line, shown under the chart and read
    by screen readers) and, when given, `data` as a table behind a "Show the numbers" expander,
    built only once the learner opens it (pass a function that makes the DataFrame, and it is not
    even made until then).

    `key` is the chart's widget key (tests find the figure by it); `kwargs` go to st.plotly_chart.
    """
    if not summary or not summary.strip():
        raise ValueError(f"chart {key!r} needs a one-line text summary of what it shows")
    config = {**PLOTLY_CONFIG, **kwargs.pop("config", {})}
    spec, title = lift_title(fig)
    if title:
        st.markdown(f"**{md_escape(title)}**")
    st.plotly_chart(_JsonReady(spec), key=key, config=config, **kwargs)
    st.caption(summary)
    if data is not None:
        # Built only when opened: a collapsed st.dataframe still mounts its grid in the browser,
        # ~15 ms of main-thread time each, and most pages carry 6-15 of them (bench/RESULTS.md).
        # Opening reruns the chart's fragment (or page) with the table in it.
        table = st.expander(TABLE_LABEL, key=table_key(key), on_change="rerun")
        if table.open:
            with table:
                # A bare 0..n-1 index says nothing and gives the table an empty, unnamed header
                # cell (axe: empty-table-header); a labelled index (experts, tokens) stays.
                if callable(data):
                    data = data()
                bare_index = isinstance(data.index, pd.RangeIndex) and data.index.name is None
                st.dataframe(data, hide_index=bare_index)
