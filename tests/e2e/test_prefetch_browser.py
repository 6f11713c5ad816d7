"""The lessons' browser code loads while the learner is on the home page, once, and then serves the
lessons: opening Lesson 1 fetches none of those modules again and its charts draw."""

from __future__ import annotations

import pytest

from lessons.course.prefetch import module_files
from lessons.course.text import LESSONS
from tests.e2e.conftest import AppServer, assert_no_exception, click_nav, goto

pytestmark = pytest.mark.e2e


def test_home_prefetches_the_lessons_code_and_lesson_1_reuses_it(app_server: AppServer, page) -> None:
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url.rsplit("/", 1)[-1]))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    goto(page, f"{app_server.url}/?learner=prefetch")
    page.wait_for_function("() => (window.__moePrefetch || {}).state === 'done'", timeout=90_000)
    files = set(module_files())
    assert files <= set(fetched), f"not prefetched: {sorted(files - set(fetched))}"

    fetched.clear()
    click_nav(page, f"1. {LESSONS[0].title}")
    charts_drawn = "() => document.querySelectorAll('[data-testid=stPlotlyChart] .main-svg').length > 0"
    page.wait_for_function(charts_drawn, timeout=90_000)
    assert_no_exception(page)
    assert not files & set(fetched), f"fetched again: {sorted(files & set(fetched))}"
    assert errors == []
