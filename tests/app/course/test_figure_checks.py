"""The lessons build figures from plain-dict traces without Plotly's validation (for speed); these
tests check that shortcut against Plotly itself, and that the suite really runs in checked mode."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from lessons.course import figures as common
from lessons.course.figures import trace, unchecked_figure


def test_the_suite_validates_every_figure() -> None:
    # tests/conftest.py sets MOE_LAB_CHECK_FIGURES=1 before lessons is imported.
    assert common.CHECK_FIGURES


def test_a_misspelt_property_fails_under_test() -> None:
    with pytest.raises(ValueError, match="colr"):
        unchecked_figure([trace("bar", x=[1, 2], y=[3, 4], marker_colr="red")], {"height": 200})


@pytest.mark.parametrize(
    ("ours", "plotly_own"),
    [
        (trace("bar", x=[1], y=[2], marker_color="red", marker_line_width=2, marker_line_color="#000"),
         go.Bar(x=[1], y=[2], marker_color="red", marker_line_width=2, marker_line_color="#000")),
        (trace("scatter", x=[0, 1], y=[1, 0], mode="lines", line={"dash": "dash"}, line_width=3),
         go.Scatter(x=[0, 1], y=[1, 0], mode="lines", line={"dash": "dash"}, line_width=3)),
        (trace("heatmap", z=[[1, 2]], colorbar_title_text="p", hoverlabel_font_size=13),
         go.Heatmap(z=[[1, 2]], colorbar_title_text="p", hoverlabel_font_size=13)),
        (trace("bar", x=[1], y=[2], error_y={"type": "data", "array": [0.1]}, error_y_color="red"),
         go.Bar(x=[1], y=[2], error_y={"type": "data", "array": [0.1]}, error_y_color="red")),
    ],
)  # fmt: skip
def test_magic_underscores_expand_as_plotly_expands_them(ours: dict, plotly_own: go.BaseTraceType) -> None:
    assert go.Figure([ours]).to_dict()["data"] == go.Figure([plotly_own]).to_dict()["data"]


def test_the_unchecked_path_sends_the_same_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    data = [trace("bar", x=["E0", "E1"], y=[0.25, 0.75], marker_pattern_shape="x", name="load")]
    layout = {"height": 300, "barmode": "stack", "yaxis": {"range": [0, 1]}}
    checked = unchecked_figure(data, layout).to_plotly_json()
    monkeypatch.setattr(common, "CHECK_FIGURES", False)
    fast = unchecked_figure(data, layout).to_plotly_json()
    assert fast["data"] == checked["data"]
    assert {k: fast["layout"][k] for k in layout} == {k: checked["layout"][k] for k in layout}
