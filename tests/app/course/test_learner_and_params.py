"""Hostile or odd URLs: learner names with markup, huge or invisible characters; unknown or bad
query parameters. Each must give a notice or be ignored, never a traceback, and a name is only
ever shown escaped (as literal text, not Markdown or HTML)."""

from __future__ import annotations

import re

import pytest

from lessons.course.render import md_escape
from lessons.course.text import LESSONS
from tests.app.conftest import sidebar_text, texts

HOSTILE = [
    '<script>alert("x")</script>',
    '<img src=x onerror=alert(1)>',
    "[click](javascript:alert(1)) **bold** $x^2$ :red[red] :material/home:",
    "Ann\x00\x07\nLee\u202e",
]


def shown_learner(at) -> str:
    caption = next(c for c in at.sidebar.caption if "Learning as" in c.value)
    return caption.value


@pytest.mark.parametrize("raw", HOSTILE)
def test_names_are_displayed_escaped(open_page, raw: str) -> None:
    at = open_page(LESSONS[0].page, query={"learner": raw})
    assert not at.exception
    caption = shown_learner(at)
    name = at.query_params["learner"]
    assert caption == f"Learning as **{md_escape(name)}**"
    # No Markdown/HTML-active character survives unescaped in what is drawn.
    body = caption.removeprefix("Learning as **").removesuffix("**")
    assert not re.search(r"(?<!\\)[<>\[\]*$:`]", body), body
    assert not re.search(r":[a-z_/]+:", body.replace("\\", "")), body  # no :material/x: shortcode


def test_control_and_bidi_characters_are_removed(open_page) -> None:
    at = open_page(query={"learner": "Ann\x00\x07\nLee\u202e"})
    assert at.query_params["learner"] == "Ann Lee"
    assert "Learning as **Ann Lee**" in sidebar_text(at)


def test_a_10kb_name_is_cut_with_a_notice(open_page) -> None:
    at = open_page()
    at.query_params["learner"] = "x" * 10_000  # arriving on a lesson page with it
    at.switch_page(LESSONS[1].page).run()
    assert not at.exception
    assert at.query_params["learner"] == "x" * 64
    assert "cut to its first 64 characters" in texts(at)


@pytest.mark.parametrize("raw", ["", "   ", "\x00\x01"])
def test_empty_names_fall_back_to_the_default(open_page, raw: str) -> None:
    at = open_page(query={"learner": raw})
    assert not at.exception
    assert "Learning as **guest**" in sidebar_text(at)
    assert "was empty" in texts(at)


def test_unknown_query_parameters_are_ignored(open_page) -> None:
    query = {"learner": "kim", "foo": "<b>bar</b>", "page": "../../etc/passwd", "embed": "maybe"}
    for page in (None, LESSONS[0].page):
        at = open_page(page, query=query)
        assert not at.exception
        assert "Learning as **kim**" in sidebar_text(at)


@pytest.mark.parametrize(("raw", "k", "notice"), [
    ("3", 3, False), ("abc", 2, True), ("99", 8, True), ("0", 1, True), ("-5", 1, True),
    ("1e9", 8, True), ("nan", 2, True), ("", 2, False),
])
def test_intro_k_from_the_url_is_clamped_or_replaced(open_page, raw: str, k: int, notice: bool) -> None:
    at = open_page(LESSONS[0].page, query={"learner": "kim", "intro_k": raw})
    assert not at.exception
    assert at.slider(key="intro_live_k").value == k
    assert ("Link settings adjusted" in texts(at)) is notice


def test_moving_the_live_k_slider_updates_the_url(open_page) -> None:
    at = open_page(LESSONS[0].page, query={"learner": "kim"})
    at.slider(key="intro_live_k").set_value(5).run()
    assert at.query_params["intro_k"] == "5"
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Expert evaluations"] == "40"  # 8 tokens x k = 5


def test_learner_survives_a_page_change_without_url(open_page) -> None:
    at = open_page(query={"learner": "lee"})
    at.query_params.clear()  # as if a link dropped the parameter
    at.switch_page(LESSONS[2].page).run()
    assert at.query_params["learner"] == "lee"  # restored from the session
    assert "Learning as **lee**" in sidebar_text(at)
