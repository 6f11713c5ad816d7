"""Every page of the course renders, with the shared sidebar, goals, quiz and links."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

import pytest

from lessons.course.page import BODY_FAILED
from lessons.course.text import GLOSSARY_PAGE, LESSONS, NUM_LESSONS
from tests.app.conftest import REPO, sidebar_text, texts

PAGES = ["app.py", *(info.page for info in LESSONS), GLOSSARY_PAGE]


def test_catalogue_matches_the_pages_folder() -> None:
    # Five lessons, numbered in order, each page file calling its own number.
    assert NUM_LESSONS == 5
    assert [info.number for info in LESSONS] == [1, 2, 3, 4, 5]
    for info in LESSONS:
        source = (REPO / info.page).read_text()
        assert f"render_lesson({info.number})" in source, info.page
    on_disk = sorted(p.name for p in (REPO / "pages").glob("*.py"))
    assert on_disk == sorted(Path(p).name for p in PAGES[1:])


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_exception(open_page, page: str) -> None:
    at = open_page(None if page == "app.py" else page)
    assert not at.exception, [e.value for e in at.exception]
    assert not [e for e in at.error if BODY_FAILED in str(e.value)], [e.value for e in at.error]
    assert "0 / 5 completed" in sidebar_text(at)
    labels = [link.value for link in at.sidebar.page_link]
    assert labels[1:6] == [f"{i.number}. {i.title}" for i in LESSONS]
    assert "Glossary and references" in labels
    # No page link carries a learner (name or id): the session and the browser know who is learning,
    # and an address copied from the bar opens nobody's progress.
    for link in [*at.sidebar.page_link, *at.main.page_link]:
        assert not parse_qs(link.proto.query_string), link.value


@pytest.mark.parametrize("info", LESSONS, ids=lambda i: i.module)
def test_lesson_frame(open_page, info) -> None:
    at = open_page(info.page, query={"learner": "pat"})
    assert at.title[0].value == info.title
    assert "In this lesson you will learn to" in texts(at)
    labels = [link.value for link in at.main.page_link]
    if info.number > 1:
        assert f"Previous: {LESSONS[info.number - 2].title}" in labels
    if info.number < NUM_LESSONS:
        assert f"Next: {LESSONS[info.number].title}" in labels


def test_home_shows_modules_progress_and_privacy_notice(open_page) -> None:
    at = open_page()
    shown = texts(at)
    for info in LESSONS:
        assert f"Lesson {info.number}: {info.title}" in shown
    assert "0 / 5 completed" in shown
    assert "knowing your name opens nothing" in shown
    assert at.button(key="home_continue").label.startswith("Start the course: Lesson 1")
    # No name yet: the prompt is there, and the learner is the friendly default.
    assert at.text_input(key="home_name_input") is not None
    assert "Learning as **guest**" in sidebar_text(at)


def test_name_prompt_sets_a_display_name_only(open_page) -> None:
    at = open_page()
    at.text_input(key="home_name_input").input("  Ada   Lovelace ")
    at.button[0].click()  # the form's submit button
    at.run()
    assert "learner" not in at.query_params  # the name is shown, never a key in the address
    assert "Learning as **Ada Lovelace**" in texts(at)
    assert not at.exception
    # The prompt is asked once: now there is only the form that changes the name shown.
    assert "home_name_input" not in [w.key for w in at.text_input]


def test_continue_goes_to_the_last_visited_lesson(open_page) -> None:
    at = open_page("pages/3_Experts_and_Sparse_Compute.py", query={"learner": "cy"})
    at.switch_page("app.py").run()
    assert "Continue where you left off: Lesson 3" in at.button(key="home_continue").label


def test_reset_needs_confirmation_and_erases(open_page, db_path) -> None:
    from lessons.course.progress import ProgressStore

    store = ProgressStore(f"sqlite:///{db_path}")
    store.record_quiz("dee", 2, 1.0)
    at = open_page(query={"learner": "dee"})
    assert "1 / 5 completed" in texts(at)
    assert at.button(key="home_reset").disabled  # not without the confirmation box
    at.checkbox(key="home_reset_confirm").check().run()
    at.button(key="home_reset").click().run()
    assert "0 / 5 completed" in texts(at)
    assert store.progress("dee") == {}
    assert "Your progress was erased" in texts(at)


def test_lesson1_calculator_presets_and_sliders(open_page) -> None:
    at = open_page(LESSONS[0].page, query={"learner": "pat"})
    metrics = lambda: {m.label: m.value for m in at.metric}
    assert metrics()["Total parameters"] == "46.7B"  # Mixtral 8x7B by default, as its card says
    at.selectbox(key="intro_calc_preset").set_value("deepseek-ai/DeepSeek-V3").run()
    assert (metrics()["Total parameters"], metrics()["Active per token"]) == ("671B", "36.6B")
    assert at.slider(key="intro_calc_experts").value == 256
    at.slider(key="intro_calc_experts").set_value(64).run()
    assert metrics()["Total parameters"] == "181B"  # fewer experts: far less memory...
    assert metrics()["Forward FLOPs / token"] == "71.2 GFLOPs"  # ...and the same compute (71.4 before)
    assert not at.exception


def test_home_lesson_cards_read_in_course_order(open_page) -> None:
    # The page's element order is what a screen reader reads and what a phone stacks: 1..5, as
    # on a wide screen (cards filled down two columns read 1, 3, 5, 2, 4).
    at = open_page()
    cards = [m.value for m in at.main.markdown if str(m.value).split("**Lesson ")[-1][:1].isdigit()]
    numbers = [int(str(card).split("**Lesson ")[1].split(":")[0]) for card in cards]
    assert numbers == [info.number for info in LESSONS]
    links = [link.value for link in at.main.page_link if link.value.startswith("Open Lesson")]
    assert links == [f"Open Lesson {info.number}" for info in LESSONS]  # each link says where it goes
