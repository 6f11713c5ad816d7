"""`reserve_margins`: a figure asks up front for the margin its labels need, so Plotly.js draws it in
one pass instead of drawing, growing the margins (automargin) and drawing again."""

from __future__ import annotations

from lessons.course.figures import CHAR_PX, LEGEND_ROW_PX, figure, reserve_margins, trace


def test_long_category_labels_get_a_wider_left_margin_than_numbers() -> None:
    short = reserve_margins([trace("bar", x=[1, 2], y=["a", "b"], orientation="h")], {})
    long = reserve_margins([trace("bar", x=[1, 2], y=["a", "attention, embeddings"], orientation="h")], {})
    assert long["l"] - short["l"] == round(CHAR_PX * (len("attention, embeddings") - 1))


def test_axis_titles_colour_bars_and_hidden_axes() -> None:
    bare = reserve_margins([trace("scatter", x=[0, 1], y=[0, 1])], {})
    titled = reserve_margins([trace("scatter", x=[0, 1], y=[0, 1])],
                             {"xaxis": {"title": {"text": "steps"}}, "yaxis": {"title": {"text": "loss"}}})
    assert titled["l"] > bare["l"] and titled["b"] > bare["b"]
    heat = reserve_margins([trace("heatmap", z=[[0, 1]], colorbar={"title": {"text": "probability"}})], {})
    no_bar = reserve_margins([trace("heatmap", z=[[0, 1]], showscale=False)], {})
    assert heat["r"] > no_bar["r"] + CHAR_PX * len("probability")
    hidden = reserve_margins([trace("scatter", x=[0, 1], y=[0, 1])],
                             {"xaxis": {"visible": False}, "yaxis": {"visible": False}})
    assert hidden["l"] == 0 and hidden["b"] == 0


def test_a_builders_own_margin_is_never_reduced() -> None:
    fig = figure([trace("bar", x=["E0", "E1"], y=[1, 2])], title="t", margin={"t": 84, "l": 300})
    margin = fig.layout.margin
    assert margin.t == 84 and margin.l == 300
    assert margin.b > 10  # raised from the 10 px base for the x tick labels


def test_a_legend_outside_the_plot_gets_room_only_when_plotly_shows_it() -> None:
    below = {"legend": {"orientation": "h", "y": -0.2, "yanchor": "top"}}
    one = [trace("bar", x=["a"], y=[1], name="kept")]
    two = [*one, trace("bar", x=["a"], y=[2], name="dropped")]
    assert reserve_margins(two, below)["b"] - reserve_margins(one, below)["b"] == LEGEND_ROW_PX
    above = {"legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom"}}
    assert reserve_margins(two, above)["t"] > reserve_margins(one, above).get("t", 0)


def test_a_legend_below_a_figure_whose_x_axis_is_on_top() -> None:
    layout = {"xaxis": {"side": "top"}, "legend": {"orientation": "h", "y": -0.05, "yanchor": "top"}}
    two = [trace("bar", x=["E0"], y=[1], name="kept"), trace("bar", x=["E0"], y=[2], name="dropped")]
    margin = reserve_margins(two, layout)
    assert margin["b"] == LEGEND_ROW_PX and margin["t"] > 0  # the tick labels went to the top
