"""`reserve_margins`: a figure asks up front for the margin its labels need, so Plotly.js draws it in
one pass instead of drawing, growing the margins (automargin) and drawing again."""

from __future__ import annotations

from lessons.course.charts import lift_title
from lessons.course.figures import CHAR_PX, LEGEND_ROW_PX, TITLE_PX, Y_TOP_PX, figure, reserve_margins, trace


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


def test_every_subplot_axis_counts() -> None:
    # Two grids stacked: the lower one's x axis carries the title (Lesson 5's traffic chart), and a
    # y axis may sit on the right.
    grids = [trace("heatmap", z=[[1]], x=["0"], y=["0"], showscale=False),
             trace("heatmap", z=[[1]], x=["0"], y=["0"], showscale=False, xaxis="x2", yaxis="y2")]
    untitled = reserve_margins(grids, {})
    lower = reserve_margins(grids, {"xaxis2": {"title": {"text": "receiving GPU"}}})
    upper = reserve_margins(grids, {"xaxis": {"title": {"text": "receiving GPU"}}})
    assert lower["b"] == upper["b"] == untitled["b"] + TITLE_PX
    wide = reserve_margins(grids, {"yaxis2": {"ticktext": ["a" * 20], "tickvals": [0]}})
    assert wide["l"] - untitled["l"] == round(CHAR_PX * 19)
    on_right = reserve_margins(grids, {"yaxis2": {"side": "right", "ticktext": ["a" * 20], "tickvals": [0]}})
    assert on_right["l"] == untitled["l"] and on_right["r"] > CHAR_PX * 20


def test_a_lifted_title_leaves_room_for_the_top_y_label() -> None:
    # A y range that ends on a tick hangs that tick's label over the plot (Lesson 4's load bars).
    bars = [trace("bar", x=["E0", "E1"], y=[0.1, 0.3])]
    spec, title = lift_title(figure(bars, title="load", yaxis={"range": [0, 0.3]}))
    assert title == "load" and spec["layout"]["margin"]["t"] >= Y_TOP_PX
    spec, _ = lift_title(figure(bars, title="load", yaxis={"visible": False}))
    assert spec["layout"]["margin"]["t"] < Y_TOP_PX  # no y labels: the title's room goes back
