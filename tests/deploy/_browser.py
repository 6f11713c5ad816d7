"""A real Chromium for the deploy, fault and fuzz tests, and what a learner does with it.

Playwright's sync API allows one running instance per thread, and tests/e2e keeps its own
(session-scoped) in the main thread. So these tests drive their browser from a thread of their
own: `BrowserThread.run(scenario)` calls `scenario(page)` there with a fresh browser context
(its own cookies, so its own Streamlit session), returns its result and re-raises its failure.

Course helpers (`open_lesson`, `pass_quiz`, `completed_on_home`) answer the quiz from the
lesson's TOML file, so the tests follow the content, and read progress the way a learner sees it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from lessons.course.quiz import Quiz, load_quiz
from lessons.course.text import lesson_info
from tests.ci import missing_dependency
from tests.e2e.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    browser_missing_reason,
    screenshot,
    wait_for_app_idle,
)

_T = TypeVar("_T")
SCENARIO_TIMEOUT_S = 240.0  # one scenario, first page loads included, on a busy 2-core machine


def require_browser() -> None:
    """Skip without Playwright/Chromium, except under CI, where that is a failure."""
    reason = browser_missing_reason()
    if reason:
        missing_dependency(f"browser unavailable: {reason}")


class BrowserThread:
    """One headless Chromium owned by one worker thread; every page call happens on it."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")
        self._pw: Any = None
        self._browser: Any = None
        self._pool.submit(self._start).result(timeout=60)

    def _start(self) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

    def run(self, scenario: Callable[..., _T], *args: Any, name: str = "scenario") -> _T:
        """Run `scenario(page, *args)` in a fresh context; on failure keep a screenshot."""
        return self._pool.submit(self._in_context, scenario, args, name).result(SCENARIO_TIMEOUT_S)

    def _in_context(self, scenario: Callable[..., _T], args: tuple, name: str) -> _T:
        context = self._browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        try:
            return scenario(page, *args)
        except BaseException:
            with contextlib.suppress(Exception):  # a dead page has no picture; the failure matters
                screenshot(page, f"FAILED-{name}")
            raise
        finally:
            context.close()

    def close(self) -> None:
        def stop() -> None:
            if self._browser is not None:
                self._browser.close()
            if self._pw is not None:
                self._pw.stop()

        self._pool.submit(stop).result(timeout=60)
        self._pool.shutdown(wait=True)


@pytest.fixture(scope="module")
def browser_thread() -> Iterator[BrowserThread]:
    """A browser for one test module (import this fixture into a conftest to use it)."""
    require_browser()
    browser = BrowserThread()
    yield browser
    browser.close()


# --- what a learner does ----------------------------------------------------------------------


def learner_token(learner: str) -> str:
    """A fixed private learner token per test learner (any 22 URL-safe characters are one)."""
    return base64.urlsafe_b64encode(hashlib.sha256(learner.encode()).digest()[:16]).decode().rstrip("=")


def page_url(base: str, page: str, learner: str | None = None, **params: str) -> str:
    """URL of `page` ("" = home, else a lesson's URL path such as "What_is_MoE"). A `learner` is
    opened by their resume link (the private id) and shown under their name."""
    query = ({"resume": learner_token(learner), "learner": learner, **params} if learner is not None
             else params)
    suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
    return f"{base.rstrip('/')}/{page}{suffix}"


def lesson_path(number: int) -> str:
    """The URL path Streamlit gives pages/N_Title.py: "Title"."""
    stem = lesson_info(number).page.rsplit("/", 1)[-1].removesuffix(".py")
    return stem.split("_", 1)[1]


FIRST_RUN_TIMEOUT_MS = 120_000  # a replica's first lesson run imports torch and plotly


def open_page(page: Any, url: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    wait_for_app_idle(page, timeout_ms=FIRST_RUN_TIMEOUT_MS)


def click_sidebar(page: Any, lesson: int) -> None:
    """Go to lesson `lesson` by its sidebar link: the same Streamlit session, no reload."""
    links = page.locator('[data-testid="stSidebar"] [data-testid="stPageLink"] a')
    links.filter(has=page.locator("p", has_text=re.compile(rf"^{lesson}\. "))).first.click()
    wait_for_app_idle(page, timeout_ms=FIRST_RUN_TIMEOUT_MS)


def main_text(page: Any) -> str:
    """The page's text, all of it: textContent, not innerText, because blocks below the fold are
    not rendered until scrolled near (content-visibility: auto, lessons/course/page.py) and
    innerText holds only rendered text."""
    return page.locator('[data-testid="stMain"]').text_content() or ""


def sidebar_text(page: Any) -> str:
    return page.locator('[data-testid="stSidebar"]').inner_text()


def exceptions(page: Any) -> list[str]:
    return page.locator('[data-testid="stException"]').all_inner_texts()


def answer_quiz(page: Any, quiz: Quiz, right: bool = True) -> None:
    """Answer every question (right, or all wrong), then submit and wait for the grade.

    A click that redraws the quiz ("Try again") leaves the old form on the page until its rerun
    ends, and the new one may not be drawn yet when we first look: finish that rerun first.
    """
    wait_for_app_idle(page, timeout_ms=FIRST_RUN_TIMEOUT_MS)
    submit = page.get_by_role("button", name="Submit answers")
    form = page.locator('[data-testid="stForm"]').filter(has=submit).first
    checkbox_offset = 0
    for i, q in enumerate(quiz.questions, start=1):
        label = f"Answer to question {i}"
        if q.kind in ("single", "truefalse"):
            index = q.answer if q.kind == "single" else (0 if q.answer else 1)  # "True" comes first
            if not right:
                index = (index + 1) % (len(q.choices) if q.kind == "single" else 2)
            form.get_by_role("radiogroup", name=label, exact=True).locator("label").nth(index).click()
        elif q.kind == "multi":
            boxes = form.locator('[data-testid="stCheckbox"]')
            picks = q.answer if right else [j for j in range(len(q.choices)) if j not in q.answer]
            for j in picks:
                boxes.nth(checkbox_offset + j).locator("label").click()
            checkbox_offset += len(q.choices)
        else:
            field = form.get_by_label(label, exact=True)
            field.fill(repr(q.answer if right else q.answer * 3 + 7))
            field.press("Tab")
    form.get_by_role("button", name="Submit answers").click()
    wait_for_app_idle(page)


def pass_quiz(page: Any, base: str, learner: str, lesson: int) -> str:
    """Open lesson `lesson` as `learner`, pass its quiz; returns the page's text after grading."""
    open_page(page, page_url(base, lesson_path(lesson), learner))
    quiz = load_quiz(lesson)
    assert quiz is not None, f"lessons/content/lesson{lesson}/quiz.toml is missing"
    answer_quiz(page, quiz)
    page.get_by_text("Lesson passed").wait_for()
    return main_text(page)


_COMPLETED = re.compile(r"(\d) / 5 completed")


def completed_on_home(page: Any, base: str, learner: str) -> int:
    """The "k / 5 completed" the home page shows `learner`."""
    open_page(page, page_url(base, "", learner))
    page.locator('[data-testid="stMain"]').get_by_text(_COMPLETED).first.wait_for()
    found = _COMPLETED.search(main_text(page))
    assert found, f"no 'k / 5 completed' on {page.url}:\n{main_text(page)[:500]}"
    return int(found.group(1))
