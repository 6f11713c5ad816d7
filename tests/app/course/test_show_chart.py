"""`show_chart`: a chart's numbers are a table on request, built only once the learner asks.

A collapsed st.dataframe still mounts its grid in the browser, so the table behind each chart is
left out of the page until its expander is opened; then it must hold exactly the caller's data,
stay open across reruns, and close again.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from streamlit.testing.v1 import AppTest

from lessons.course.charts import TABLE_LABEL, table_key
from tests import apptest_pages

SCRIPT = """
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lessons.course.charts import show_chart

@st.fragment
def panel():
    load = pd.DataFrame({"expert": ["E0", "E1", "E2"], "tokens": [5, 1, 2]})
    fig = go.Figure(go.Bar(x=load["expert"], y=load["tokens"]), layout={"title": {"text": "Load"}})
    show_chart(fig, key="load_chart", summary="E0 takes 5 of 8 tokens.", data=load)

panel()
st.text(f"page runs: {st.session_state.setdefault('runs', 0) + 1}")
st.session_state.runs += 1
"""
EXPECTED = pd.DataFrame({"expert": ["E0", "E1", "E2"], "tokens": [5, 1, 2]})


def _open(tmp_path: Path) -> AppTest:
    script = tmp_path / "chart_demo.py"
    script.write_text(SCRIPT)
    apptest_pages._registered.clear()  # this script is not app.py: it has no pages to fall back to
    return AppTest.from_file(str(script), default_timeout=30).run()


def test_the_table_is_offered_but_not_built_until_opened(tmp_path: Path) -> None:
    at = _open(tmp_path)
    assert not at.exception
    assert [e.label for e in at.expander] == [TABLE_LABEL]
    assert len(at.dataframe) == 0
    assert [c.value for c in at.caption] == ["E0 takes 5 of 8 tokens."]
    assert [m.value for m in at.markdown] == ["**Load**"]  # the title, lifted out of the figure


def test_opening_shows_the_callers_data_and_it_stays_open_until_closed(tmp_path: Path) -> None:
    at = _open(tmp_path)
    at.session_state[table_key("load_chart")] = True  # what a click on the expander sends
    at.run()
    assert not at.exception
    assert len(at.dataframe) == 1
    pd.testing.assert_frame_equal(at.dataframe[0].value.reset_index(drop=True), EXPECTED)
    at.run()  # any other rerun keeps it open
    assert len(at.dataframe) == 1
    at.session_state[table_key("load_chart")] = False
    at.run()
    assert len(at.dataframe) == 0
