"""AppTest helpers for the fault and fuzz tests: open a page, take a quiz, read what is shown.

`AppTest` runs the real pages in this process against whatever `MOE_LAB_DATABASE_URL` says, so
a test sets that (a broken SQLite file, a locked one, ...) and then looks only at what a learner
would see: notices, the lesson, the quiz grade.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from lessons.course.page import BODY_FAILED
from lessons.course.quiz import load_quiz
from lessons.course.text import lesson_info
from tests import apptest_pages

apptest_pages.install()  # fragment reruns resolve page links, as in a real session
REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120  # a first lesson run imports torch and plotly; the machine is shared


def open_app(page: int | None = None, query: dict[str, str] | None = None,
             user: dict[str, Any] | None = None) -> AppTest:
    """Run the home page (AppTest needs one run first), then lesson `page` if given."""
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT_S)
    at.query_params.update(query or {})
    if user is not None:
        at.user = user
    at.run()
    if page is not None:
        at.switch_page(lesson_info(page).page).run()
    return at


def shown(at: AppTest) -> str:
    """Every text the run drew (Markdown, captions, alerts, titles), main and sidebar."""
    parts: list[Any] = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [t.value for t in at.title] + [t.value for t in at.subheader]
    for kind in ("info", "warning", "error", "success"):
        parts += [e.value for e in getattr(at, kind)]
    parts += [m.value for m in at.sidebar.markdown] + [c.value for c in at.sidebar.caption]
    return "\n".join(str(p) for p in parts)


def warnings(at: AppTest) -> list[str]:
    return [str(w.value) for w in at.warning]


def assert_lesson_works(at: AppTest, number: int) -> None:
    """No traceback, the lesson's title and body are there, and its quiz form is drawn."""
    assert not at.exception, [e.value for e in at.exception]
    assert at.title and at.title[0].value == lesson_info(number).title
    assert not [e for e in at.error if BODY_FAILED in str(e.value)], [e.value for e in at.error]
    assert any(b.label == "Submit answers" for b in at.button), "the quiz form is missing"


def take_quiz(at: AppTest, number: int, right: bool = True) -> AppTest:
    """Answer lesson `number`'s quiz in the first attempt's form (right or all wrong), submit."""
    quiz = load_quiz(number)
    assert quiz is not None
    key_attempt = f"quiz{number}_attempt"
    attempt = at.session_state.get(key_attempt, 0)
    for q in quiz.questions:
        key = f"quiz{number}_{attempt}_{q.id}"
        if q.kind == "single":
            at.radio(key=key).set_value(q.answer if right else (q.answer + 1) % len(q.choices))
        elif q.kind == "truefalse":
            at.radio(key=key).set_value("True" if q.answer == right else "False")
        elif q.kind == "multi":
            picks = q.answer if right else [i for i in range(len(q.choices)) if i not in q.answer]
            for i in picks:
                at.checkbox(key=f"{key}_{i}").check()
        else:
            at.number_input(key=key).set_value(q.answer if right else q.answer * 3 + 7)
    next(b for b in at.button if b.label == "Submit answers").click()
    return at.run()
