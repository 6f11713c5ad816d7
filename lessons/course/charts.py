"""Every chart of the course goes through `show_chart`: one place for how a figure reaches a learner.

Why one function: a chart must be readable without seeing it and usable with a keyboard. So each
chart carries a one-line text summary of what it shows *now* (computed by the caller from the same
numbers as the figure), optionally its data as a table on request, and no Plotly toolbar — the
toolbar's buttons put dozens of Tab stops between a keyboard learner and the quiz, and on a phone
they sit on top of the chart's title.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

# The same for every chart: no mode bar (Tab stops, covers titles on phones), no logo, no scroll
# zoom (a page scroll must scroll the page), responsive width.
PLOTLY_CONFIG: dict[str, Any] = {"displayModeBar": False, "displaylogo": False, "scrollZoom": False,
                                 "responsive": True}  # fmt: skip


def show_chart(
    fig: go.Figure | dict,
    *,
    key: str,
    summary: str,
    data: pd.DataFrame | None = None,
    **kwargs: Any,
) -> None:
    """Draw `fig` with its text alternative: `summary` (one line, shown under the chart and read
    by screen readers) and, when given, `data` as a table behind a "Show the numbers" toggle.

    `key` is the chart's widget key (tests find the figure by it); `kwargs` go to st.plotly_chart.
    """
    if not summary or not summary.strip():
        raise ValueError(f"chart {key!r} needs a one-line text summary of what it shows")
    config = {**PLOTLY_CONFIG, **kwargs.pop("config", {})}
    st.plotly_chart(fig, key=key, config=config, **kwargs)
    st.caption(summary)
    if data is not None:
        with st.expander("Show the numbers as a table"):
            # A bare 0..n-1 index says nothing and gives the table an empty, unnamed header cell
            # (axe: empty-table-header); a labelled index (experts, tokens) stays.
            st.dataframe(data, hide_index=isinstance(data.index, pd.RangeIndex) and data.index.name is None)
