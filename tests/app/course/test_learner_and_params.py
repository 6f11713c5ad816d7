"""Who is learning, and hostile or odd URLs.

The remembered learner (contract 5): every fresh session gets its own unguessable id; the name a
learner types is only shown, so a name equal to another learner's opens nothing; an old
`?learner=NAME` link moves that name's progress to the browser once; a resume link carries the id.
Then names with markup, huge or invisible characters, and unknown or bad query parameters: each
gives a notice or is ignored, never a traceback, and a name is only ever shown escaped."""

from __future__ import annotations

import re

import pytest

from lessons.course.identity import normalize_learner_name
from lessons.course.progress import ProgressStore
from lessons.course.render import md_escape
from lessons.course.text import LESSONS
from tests.app.conftest import new_app, sidebar_text, texts
from tests.app.course.test_quiz import fill_quiz

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
    assert "learner" not in at.query_params  # read once, then gone from the address
    name = normalize_learner_name(raw).name
    assert caption == f"Learning as **{md_escape(name)}**"
    # No Markdown/HTML-active character survives unescaped in what is drawn.
    body = caption.removeprefix("Learning as **").removesuffix("**")
    assert not re.search(r"(?<!\\)[<>\[\]*$:`]", body), body
    assert not re.search(r":[a-z_/]+:", body.replace("\\", "")), body  # no :material/x: shortcode


@pytest.mark.parametrize("raw", HOSTILE[:3])
def test_names_in_notices_are_escaped(open_page, db_path, raw: str) -> None:
    name = normalize_learner_name(raw).name
    ProgressStore(f"sqlite:///{db_path}").record_quiz(name, 1, 1.0)  # an old name's progress
    at = open_page(query={"learner": raw})
    notice = next(i.value for i in at.info if "now belongs to this browser" in i.value)
    assert f"“{md_escape(name)}”" in notice
    assert f"“{name}”" not in notice  # each of these names has Markdown to escape


def test_control_and_bidi_characters_are_removed(open_page) -> None:
    at = open_page(query={"learner": "Ann\x00\x07\nLee\u202e"})
    assert "Learning as **Ann Lee**" in sidebar_text(at)


def test_a_10kb_name_is_cut_with_a_notice(open_page) -> None:
    at = open_page()
    at.query_params["learner"] = "x" * 10_000  # arriving on a lesson page with it
    at.switch_page(LESSONS[1].page).run()
    assert not at.exception
    assert f"Learning as **{'x' * 64}**" in sidebar_text(at)
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
    key = learner_key(at)
    at.switch_page(LESSONS[2].page).run()
    assert "learner" not in at.query_params  # links carry no learner: the session knows it
    assert "Learning as **lee**" in sidebar_text(at)
    assert learner_key(at) == key


# --- the remembered learner ------------------------------------------------------------------

TOKEN = re.compile(r"browser:[A-Za-z0-9_-]{22}")


def learner_key(at) -> str:
    return at.session_state["learner_current"].key


def resume_token(at) -> str:
    """The token in the home page's "Continue on another device" link."""
    link = next(c.value for c in at.code if "resume=" in c.value)
    return link.rsplit("resume=", 1)[1]


def test_every_fresh_session_gets_its_own_unguessable_id(open_page) -> None:
    keys = [learner_key(open_page()) for _ in range(3)]
    assert all(TOKEN.fullmatch(k) for k in keys), keys
    assert len(set(keys)) == 3
    at = open_page()
    assert resume_token(at) == learner_key(at).removeprefix("browser:")
    assert "Learning as **guest**" in sidebar_text(at)


def _name_yourself(at, name: str):
    at.text_input(key="home_name_input").input(name)
    return next(b for b in at.button if b.label == "Start learning").click().run()


def test_a_name_equal_to_another_learners_opens_nothing(open_page) -> None:
    ann = _name_yourself(open_page(), "Ann")
    ann.switch_page(LESSONS[0].page).run()
    fill_quiz(ann, 1, correct=True)
    assert "1 / 5 completed" in sidebar_text(ann)
    mallory = _name_yourself(open_page(), "Ann")  # another browser, the same name typed
    assert "Learning as **Ann**" in sidebar_text(mallory)
    assert "0 / 5 completed" in sidebar_text(mallory)
    old_link = open_page(query={"learner": "Ann"})  # an old-style link with the name: nothing either
    assert "0 / 5 completed" in sidebar_text(old_link)
    ann.switch_page("app.py").run()
    again = new_app({"resume": resume_token(ann)}).run()  # Ann's own resume link opens hers
    assert "1 / 5 completed" in sidebar_text(again) and "Learning as **Ann**" in sidebar_text(again)


def test_an_old_name_link_moves_that_progress_into_the_browser_once(open_page, db_path) -> None:
    store = ProgressStore(f"sqlite:///{db_path}")
    store.record_quiz("ann", 2, 1.0)  # as MoE Lab stored it before private ids: under the name
    store.mark_visited("ann", 2)
    at = open_page(query={"learner": "ann"})
    assert not at.exception
    assert "1 / 5 completed" in sidebar_text(at) and "Learning as **ann**" in sidebar_text(at)
    assert "now belongs to this browser" in texts(at)
    assert "learner" not in at.query_params
    assert store.progress(learner_key(at))[2].passed and store.progress("ann") == {}
    assert store.display_name(learner_key(at)) == "ann"
    at.switch_page(LESSONS[1].page).run()  # it stays with the learner on every page
    assert "1 / 5 completed" in sidebar_text(at)
    other = open_page(query={"learner": "ann"})  # the same old link, opened again elsewhere
    assert "0 / 5 completed" in sidebar_text(other)
    assert "now belongs to this browser" not in texts(other)


def test_a_link_naming_a_private_id_is_refused(open_page) -> None:
    ann = open_page(LESSONS[0].page)
    fill_quiz(ann, 1, correct=True)
    for crafted in (learner_key(ann), f" {learner_key(ann).upper()} "):
        at = open_page(query={"learner": crafted})
        assert "look like private learner ids" in texts(at)
        assert "0 / 5 completed" in sidebar_text(at) and "Learning as **guest**" in sidebar_text(at)


@pytest.mark.parametrize("bad", ["", "short", "x" * 22 + "!", "a" * 23, "../../etc/passwd"])
def test_a_broken_resume_link_gives_a_notice_and_a_fresh_learner(open_page, bad: str) -> None:
    at = open_page(query={"resume": bad})
    assert not at.exception
    assert "resume link is incomplete or mistyped" in texts(at)
    assert "resume" not in at.query_params
    assert TOKEN.fullmatch(learner_key(at))


def test_the_resume_link_opens_the_same_learner_and_leaves_the_address(open_page) -> None:
    first = open_page(LESSONS[0].page)
    fill_quiz(first, 1, correct=True)
    first.switch_page("app.py").run()
    token = resume_token(first)
    other_device = new_app({"resume": token}).run()
    assert not other_device.exception
    assert "resume" not in other_device.query_params
    assert learner_key(other_device) == learner_key(first)
    assert "1 / 5 completed" in sidebar_text(other_device)
    assert "continues the progress of your resume link" in texts(other_device)


def test_starting_over_gives_this_browser_a_new_learner(open_page) -> None:
    at = open_page(LESSONS[0].page)
    fill_quiz(at, 1, correct=True)
    at.switch_page("app.py").run()
    old = learner_key(at)
    at.button(key="home_new_learner").click().run()
    assert learner_key(at) != old and TOKEN.fullmatch(learner_key(at))
    assert "0 / 5 completed" in sidebar_text(at)
    assert "new learner" in texts(at)
