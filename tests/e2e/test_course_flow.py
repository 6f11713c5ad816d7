"""The course in a real browser: name prompt, all five lessons via the sidebar, Lesson 1's quiz
passed, and "1 / 5 completed" after a reload and after a server restart.

The quiz is answered from `lessons/content/lesson1/quiz.toml` itself (whatever its questions are), so
the test follows the content; it drives the widgets by their accessible labels, as a keyboard or
screen-reader user would find them.
"""

from __future__ import annotations

import re

import pytest

from lessons.course.quiz import Quiz, load_quiz
from lessons.course.text import LESSONS
from tests.e2e.conftest import (
    AppServer,
    assert_no_exception,
    click_nav,
    goto,
    screenshot,
    wait_for_app_idle,
)

pytestmark = pytest.mark.e2e
LEARNER = "Ada <b>e2e</b>"  # also checks that a name with markup is shown literally
FIRST_VISIT_MS = 180_000  # a lesson's first run may import torch, train a tiny model, spawn workers


def sidebar_text(page) -> str:
    return page.locator('[data-testid="stSidebar"]').inner_text()


def answer_quiz(page, quiz: Quiz) -> None:
    """Give the right answer to every question, then submit."""
    submit = page.get_by_role("button", name="Submit answers")
    form = page.locator('[data-testid="stForm"]').filter(has=submit).first
    checkbox_offset = 0
    for i, q in enumerate(quiz.questions, start=1):
        label = f"Answer to question {i}"
        if q.kind in ("single", "truefalse"):
            index = q.answer if q.kind == "single" else (0 if q.answer else 1)  # True is listed first
            form.get_by_role("radiogroup", name=label, exact=True).locator("label").nth(index).click()
        elif q.kind == "multi":
            boxes = form.locator('[data-testid="stCheckbox"]')
            for j in q.answer:
                boxes.nth(checkbox_offset + j).locator("label").click()
            checkbox_offset += len(q.choices)
        else:
            field = form.get_by_label(label, exact=True)
            field.fill(repr(q.answer))
            field.press("Tab")
    form.get_by_role("button", name="Submit answers").click()
    wait_for_app_idle(page)


def test_course_flow(page, app_server: AppServer, restart_app) -> None:
    goto(page, app_server.url)
    assert_no_exception(page)
    assert "0 / 5 completed" in page.locator('[data-testid="stMain"]').text_content()
    screenshot(page, "home_first_visit")

    # The name prompt: the chosen name is only shown (escaped); the address carries no learner.
    page.get_by_label("Learner name").fill(LEARNER)
    page.get_by_role("button", name="Start learning").click()
    wait_for_app_idle(page)
    assert "learner=" not in page.url
    assert f"Learning as {LEARNER}" in page.locator('[data-testid="stMain"]').text_content()
    assert page.locator("b", has_text="e2e").count() == 0  # the <b> was not rendered as HTML
    screenshot(page, "home")

    for info in LESSONS:
        click_nav(page, re.compile(rf"^{info.number}\. "), FIRST_VISIT_MS)
        assert_no_exception(page)
        page.get_by_role("heading", name=info.title).first.wait_for()
        assert f"Learning as {LEARNER}" in sidebar_text(page), f"learner lost on the way to {info.page}"
        screenshot(page, f"lesson{info.number}")

    click_nav(page, "Glossary and references")
    assert_no_exception(page)
    screenshot(page, "glossary")

    click_nav(page, re.compile(r"^1\. "))
    quiz = load_quiz(1)
    assert quiz is not None, "lessons/content/lesson1/quiz.toml is missing"
    answer_quiz(page, quiz)
    page.get_by_text("Lesson passed").wait_for()
    assert_no_exception(page)  # the quiz is a fragment that also redraws the sidebar
    assert "1 / 5 completed" in sidebar_text(page)
    screenshot(page, "lesson1_quiz_passed")

    # Trying again blanks the form (a rerun of the quiz alone) and keeps the pass.
    page.get_by_role("button", name="Try again").click()
    wait_for_app_idle(page)
    assert_no_exception(page)
    assert page.get_by_text("Lesson passed").count() == 0
    page.get_by_role("button", name="Submit answers").wait_for()
    assert "1 / 5 completed" in sidebar_text(page)

    page.reload(wait_until="domcontentloaded")
    wait_for_app_idle(page)
    assert "1 / 5 completed" in sidebar_text(page)

    # A server restart on the same database keeps it; the browser alone restores the learner.
    fresh = restart_app()
    goto(page, f"{fresh.url}/")
    assert "1 / 5 completed" in page.locator('[data-testid="stMain"]').text_content()
    screenshot(page, "home_after_restart")
