"""Predict, then try: the widget, what is stored, kept across sessions, and the session fallback.

A tiny script (`SCRIPT`) draws one prediction and its reveal the way a lesson does,
after `resolve_learner` as every page does. The database is a real SQLite file (conftest's
`db_path`); the broken one is a file of garbage, as in test_resilience_and_login.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lessons.course.progress import ProgressStore
from tests import apptest_pages
from tests.app.conftest import texts
from tests.app.course.test_resilience_and_login import GARBAGE

OPTIONS = ["It stays balanced", "One expert takes most tokens"]


SCRIPT = """
import streamlit as st

from lessons.course import sidebar as ui
from lessons.course.predict import predict, reveal

ui.resolve_learner([])
guess = predict(4, "collapse", "Without balancing, what will the load do?",
                ["It stays balanced", "One expert takes most tokens"])
st.text(f"returned: {guess}")
reveal(4, "collapse", "One expert takes most tokens", "The rich get richer.")
"""


@pytest.fixture
def _app(tmp_path: Path, db_path: Path) -> Callable[..., AppTest]:
    """Opens the script in a new session (a new browser tab), with an optional query string."""
    # A file with a plain name: once app.py (which has a pages/ folder) has run in this process,
    # Streamlit names every script's page after its file, and from_function's hashed name has none.
    script = tmp_path / "predict_demo.py"
    script.write_text(SCRIPT)
    apptest_pages._registered.clear()  # this script is not app.py: it has no pages to fall back to

    def open_script(query: dict[str, str] | None = None) -> AppTest:
        at = AppTest.from_file(str(script), default_timeout=30)
        at.query_params.update(query or {})
        return at.run()

    return open_script


def _returned(at: AppTest) -> str:
    return next(t.value for t in at.text if t.value.startswith("returned: "))


def _lock_in(at: AppTest, option: str | None) -> AppTest:
    if option is not None:
        at.radio(key="predict_4_collapse_choice").set_value(option)
    return at.button[0].click().run()  # the form's "Lock in my prediction"


def _rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("select lesson, key, answer from predictions").fetchall()


def test_no_prediction_yet_shows_the_question_and_no_reveal(_app, db_path: Path) -> None:
    at = _app()
    assert not at.exception
    assert at.radio(key="predict_4_collapse_choice").options == OPTIONS
    assert at.radio(key="predict_4_collapse_choice").value is None  # nothing chosen for them
    assert _returned(at) == "returned: None"
    assert "The rich get richer." not in texts(at)  # no reveal without a prediction


def test_locking_in_stores_it_and_the_reveal_says_whether_it_held(_app, db_path: Path) -> None:
    at = _lock_in(_app(), OPTIONS[0])
    assert not at.exception
    assert _returned(at) == f"returned: {OPTIONS[0]}"
    assert f"You predicted: **{OPTIONS[0]}**" in texts(at)
    assert not at.radio  # locked in: no second guess after seeing the outcome
    assert [i.value for i in at.info] == [f"You predicted **{OPTIONS[0]}**; what happened: **{OPTIONS[1]}**"]
    assert "The rich get richer." in texts(at)
    assert [(lesson, key, answer) for lesson, key, answer in _rows(db_path)] == [(4, "collapse", OPTIONS[0])]


def test_a_prediction_that_held_is_said_to_hold(_app, db_path: Path) -> None:
    at = _lock_in(_app(), OPTIONS[1])
    assert [s.value for s in at.success] == [f"Your prediction held: **{OPTIONS[1]}**"]


def test_locking_in_nothing_asks_for_a_choice(_app, db_path: Path) -> None:
    at = _lock_in(_app(), None)
    assert not at.exception
    assert "Pick one of the answers first" in texts(at)
    assert _returned(at) == "returned: None" and _rows(db_path) == []


def _token(at: AppTest) -> str:
    return at.session_state["learner_current"].token


def test_a_new_session_of_the_same_learner_sees_the_prediction(_app, db_path: Path) -> None:
    first = _lock_in(_app({"learner": "pia"}), OPTIONS[1])
    # A reload: a new session with nothing in session_state, the same learner (AppTest sends no
    # cookies, so the learner's resume link stands in for the browser's memory).
    again = _app({"resume": _token(first)})
    assert _returned(again) == f"returned: {OPTIONS[1]}"
    assert not again.radio
    other = _app({"learner": "pia"})  # the same display name in another browser: nothing
    assert _returned(other) == "returned: None"


def test_first_prediction_stored_wins(_app, db_path: Path) -> None:
    # Two tabs of one learner: the second locks in after the first (it may have seen the outcome).
    first = _app()
    second = _app({"resume": _token(first)})
    _lock_in(first, OPTIONS[0])
    second = _lock_in(second, OPTIONS[1])
    assert _returned(second) == f"returned: {OPTIONS[0]}"
    assert [r[2] for r in _rows(db_path)] == [OPTIONS[0]]


def test_broken_store_keeps_the_prediction_in_the_session_and_saves_it_later(_app, db_path: Path) -> None:
    db_path.write_bytes(GARBAGE)
    at = _app({"learner": "pia"})
    at = _lock_in(at, OPTIONS[1])
    assert not at.exception
    assert _returned(at) == f"returned: {OPTIONS[1]}"
    assert "try to save your prediction again" in texts(at)
    assert db_path.read_bytes() == GARBAGE  # left untouched
    db_path.unlink()  # the operator fixes the database
    at.run()
    key = at.session_state["learner_current"].key
    assert ProgressStore(f"sqlite:///{db_path}").predictions(key, 4) == {"collapse": OPTIONS[1]}
