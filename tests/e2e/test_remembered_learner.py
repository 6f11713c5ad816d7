"""The browser remembers its learner (contract 5; issue 18 item 7), in a real Chromium.

A learner opens the plain address, names themself, passes Lesson 1's quiz, closes the page and
opens the plain address again: their progress is there, and the address never showed a name or an
id. Another browser (a new context: its own cookies) opening the same plain address, or typing the
same name, is a new learner at 0 / 5; the first learner's resume link opens their progress there.
"""

from __future__ import annotations

import re

from lessons.course.quiz import load_quiz
from tests.deploy._browser import answer_quiz, main_text, sidebar_text
from tests.e2e.conftest import (
    VIEWPORT,
    AppServer,
    assert_no_exception,
    click_nav,
    goto,
    screenshot,
    wait_for_app_idle,
)

COOKIE = "moe_lab_learner"
FIRST_VISIT_MS = 180_000  # a lesson's first run imports torch and builds its live model


def _name_yourself(page, name: str) -> None:
    page.get_by_label("Learner name").fill(name)
    page.get_by_role("button", name="Start learning").click()
    wait_for_app_idle(page)


def _learner_cookie(context) -> str | None:
    values = [c["value"] for c in context.cookies() if c["name"] == COOKIE]
    return values[0] if values else None


def _resume_link(page) -> str:
    page.get_by_text("Continue on another device").click()
    code = page.locator('[data-testid="stCode"]').filter(has_text="resume=").first
    code.wait_for()
    return code.inner_text().strip()


def test_a_learner_who_closes_the_page_is_remembered(browser, app_server: AppServer) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    goto(page, f"{app_server.url}/")
    assert_no_exception(page)
    assert "0 / 5 completed" in main_text(page)
    _name_yourself(page, "Grace")
    assert "Learning as Grace" in main_text(page)
    token = _learner_cookie(context)
    assert token is not None and re.fullmatch(r"[A-Za-z0-9_-]{22}", token), context.cookies()

    click_nav(page, re.compile(r"^1\. "), FIRST_VISIT_MS)
    quiz = load_quiz(1)
    assert quiz is not None
    answer_quiz(page, quiz)
    page.get_by_text("Lesson passed").wait_for()
    assert "1 / 5 completed" in sidebar_text(page)
    link = _go_home_and_copy_link(page)
    page.close()  # the learner closes the tab; the browser (its cookies) stays

    again = context.new_page()
    goto(again, f"{app_server.url}/")  # the plain address: no name, no id
    assert_no_exception(again)
    assert "1 / 5 completed" in main_text(again)
    assert "Learning as Grace" in main_text(again)
    assert "?" not in again.url, again.url  # nothing was added to the address
    screenshot(again, "remembered_learner_home")
    context.close()

    # Another browser: a new learner, whatever name it types ...
    other = browser.new_context(viewport=VIEWPORT)
    stranger = other.new_page()
    goto(stranger, f"{app_server.url}/")
    assert "0 / 5 completed" in main_text(stranger)
    _name_yourself(stranger, "Grace")
    assert "0 / 5 completed" in main_text(stranger)
    assert _learner_cookie(other) not in (None, token)
    # ... until it opens Grace's resume link: then it is Grace, and stays Grace after a reload.
    goto(stranger, link)
    assert "1 / 5 completed" in main_text(stranger)
    assert "resume=" not in stranger.url
    assert _learner_cookie(other) == token
    goto(stranger, f"{app_server.url}/")
    assert "1 / 5 completed" in main_text(stranger)
    other.close()


def _go_home_and_copy_link(page) -> str:
    click_nav(page, "MoE Lab home")
    assert_no_exception(page)
    link = _resume_link(page)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?resume=[A-Za-z0-9_-]{22}", link), link
    screenshot(page, "remembered_learner_resume_link")
    return link
