"""The server is killed with SIGKILL in the middle of a course and started again.

A learner in a real browser passes Lesson 1, fails Lesson 4 and passes Lesson 3, each time
waiting for the page to confirm the grade with no "not saved" notice; then, while the next
lesson is loading, the server gets SIGKILL (no shutdown code runs). A fresh server on the same
SQLite file must show every confirmed result, and the file must still be a sound database.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest

from lessons.course.quiz import load_quiz
from tests.deploy._browser import (
    BrowserThread,
    answer_quiz,
    completed_on_home,
    exceptions,
    lesson_path,
    main_text,
    open_page,
    page_url,
    pass_quiz,
)
from tests.e2e.conftest import start_app

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
LEARNER = "Kim (killed mid-course)"


def test_sigkill_mid_course_loses_no_confirmed_result(browser_thread: BrowserThread, tmp_path: Path) -> None:
    db = tmp_path / "progress.db"
    server = start_app(f"sqlite:///{db}", tmp_path)
    try:
        def course(page) -> None:
            for lesson in (1, 3):
                text = pass_quiz(page, server.url, LEARNER, lesson)
                assert "can't be saved" not in text and not exceptions(page), text[-800:]
                if lesson == 1:  # a failed attempt between the passes is a result too
                    open_page(page, page_url(server.url, lesson_path(4), LEARNER))
                    answer_quiz(page, load_quiz(4), right=False)
                    page.get_by_text("You need 80%").wait_for()
                    assert "can't be saved" not in main_text(page)
            # Mid-course: the next lesson is loading when the server dies.
            page.goto(page_url(server.url, lesson_path(2), LEARNER), wait_until="commit")
            os.kill(server.process.pid, signal.SIGKILL)

        browser_thread.run(course, name="sigkill-course")
        assert server.process.wait(timeout=10) == -signal.SIGKILL
    finally:
        server.stop()

    fresh = start_app(f"sqlite:///{db}", tmp_path)
    try:
        assert browser_thread.run(lambda page: completed_on_home(page, fresh.url, LEARNER)) == 2
    finally:
        fresh.stop()
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma integrity_check").fetchone() == ("ok",)
        rows = conn.execute("select q.lesson, q.passed, q.attempts, q.best_score from quiz_results q "
                            "join learners l on l.id = q.learner where l.display_name = ? "
                            "order by q.lesson", (LEARNER,)).fetchall()
    assert [(lesson, passed, attempts) for lesson, passed, attempts, _ in rows] == [
        (1, 1, 1), (3, 1, 1), (4, 0, 1)]
    assert rows[0][3] == 1.0 and rows[1][3] == 1.0 and rows[2][3] < 0.8
