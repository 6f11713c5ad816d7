"""The lessons keep working when progress cannot be stored, and sign-in overrides the URL.

The broken database is real (a file of garbage where the SQLite file should be); sign-in uses
AppTest's own `st.user` stub (`AppTest.user`), the documented way to test `st.login` apps.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lessons.course.progress import ProgressStore
from lessons.course.text import LESSONS
from tests.app.conftest import new_app, sidebar_text, texts
from tests.app.course.test_quiz import fill_quiz

GARBAGE = b"this is not a database, it is someone's notes\n" * 50


def test_corrupt_database_gives_a_notice_and_is_left_untouched(db_path: Path) -> None:
    db_path.write_bytes(GARBAGE)
    at = new_app({"learner": "noor"}).run()
    assert not at.exception
    assert any("not a SQLite database" in w.value for w in at.warning), [w.value for w in at.warning]
    at.switch_page(LESSONS[0].page).run()
    assert not at.exception
    assert at.title[0].value == LESSONS[0].title  # the lesson still renders, quiz included
    fill_quiz(at, 1, correct=True)
    assert "Lesson passed" in texts(at)
    assert "will try to save this result again" in texts(at)
    assert "1 / 5 completed" in sidebar_text(at)  # kept for this session
    assert db_path.read_bytes() == GARBAGE


def test_unsaved_result_is_saved_once_the_database_is_back(db_path: Path) -> None:
    db_path.write_bytes(GARBAGE)
    at = new_app({"learner": "noor"}).run()
    at.switch_page(LESSONS[0].page).run()
    fill_quiz(at, 1, correct=True)
    db_path.unlink()  # the operator fixes the file; the next page run retries the save
    at.switch_page("app.py").run()
    assert not at.warning, [w.value for w in at.warning]
    key = at.session_state["learner_current"].key  # noor's private id, not the name
    record = ProgressStore(f"sqlite:///{db_path}").progress(key)[1]
    assert record.passed and record.best_score == 1.0


def test_a_name_typed_while_the_database_is_broken_is_saved_once_it_is_back(db_path: Path) -> None:
    db_path.write_bytes(GARBAGE)
    at = new_app().run()
    at.text_input(key="home_name_input").input("Noor")
    at = next(b for b in at.button if b.label == "Start learning").click().run()
    assert "Learning as **Noor**" in sidebar_text(at)  # shown for this session
    db_path.unlink()  # the operator fixes the database
    at.switch_page(LESSONS[0].page).run()
    key = at.session_state["learner_current"].key
    assert ProgressStore(f"sqlite:///{db_path}").display_name(key) == "Noor"


def test_unusable_database_url_still_serves_lessons(monkeypatch) -> None:
    monkeypatch.setenv("MOE_LAB_DATABASE_URL", "not a url at all")
    at = new_app({"learner": "noor"}).run()
    assert not at.exception and at.warning
    at.switch_page(LESSONS[1].page).run()
    assert not at.exception and at.title[0].value == LESSONS[1].title


def test_an_old_link_on_a_read_only_database_still_shows_that_progress(db_path: Path, monkeypatch) -> None:
    ProgressStore(f"sqlite:///{db_path}").record_quiz("ro", 1, 1.0)  # stored under the name (v1 days)
    before = db_path.read_bytes()
    monkeypatch.setenv("MOE_LAB_DATABASE_URL", f"sqlite:///file:{db_path}?mode=ro&uri=true")
    at = new_app({"learner": "ro"}).run()
    assert not at.exception
    assert "1 / 5 completed" in sidebar_text(at)  # read under the old name, though it can't move
    assert "read-only" in texts(at)
    at.switch_page(LESSONS[1].page).run()
    assert "1 / 5 completed" in sidebar_text(at)
    assert db_path.read_bytes() == before


def test_an_old_link_opened_while_the_database_is_locked_moves_once_released(db_path: Path) -> None:
    store = ProgressStore(f"sqlite:///{db_path}")
    store.record_quiz("lu", 1, 1.0)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another program holds the database
    try:
        at = new_app({"learner": "lu"}).run()
        assert not at.exception
        assert [w.value for w in at.warning if "busy" in w.value]
        assert not [i.value for i in at.info if "busy" in i.value]  # said once, not twice
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    at.run()  # the next run of the same session moves it
    key = at.session_state["learner_current"].key
    assert "1 / 5 completed" in sidebar_text(at) and not at.warning
    assert store.progress(key)[1].passed and store.progress("lu") == {}
    assert store.display_name(key) == "lu"


SIGNED_IN = {"is_logged_in": True, "sub": "oidc|1234", "email": "ann@example.org", "name": "Ann *A*"}


def test_signed_in_user_is_the_learner_and_the_url_cannot_override(db_path: Path) -> None:
    at = new_app({"learner": "mallory"}, user=SIGNED_IN).run()
    assert not at.exception
    assert "learner" not in at.query_params
    assert "the learner in the link was ignored" in texts(at)
    assert "Signed in as **Ann \\*A\\***" in texts(at)  # the display name, escaped
    at.switch_page(LESSONS[0].page).run()
    fill_quiz(at, 1, correct=True)
    store = ProgressStore(f"sqlite:///{db_path}")
    assert store.progress("sso:oidc|1234")[1].passed
    assert store.progress("mallory") == {}
    assert not [k for k in _keys(db_path) if k.startswith("browser:")]  # no private id was made


def test_signed_in_user_ignores_a_resume_link(db_path: Path, open_page) -> None:
    visitor = open_page(LESSONS[0].page)
    fill_quiz(visitor, 1, correct=True)
    token = visitor.session_state["learner_current"].key.removeprefix("browser:")
    at = new_app({"resume": token}, user=SIGNED_IN).run()
    assert "resume" not in at.query_params
    assert "the learner in the link was ignored" in texts(at)
    assert "0 / 5 completed" in sidebar_text(at)  # Ann's account, not the visitor's progress
    # Page links carry no learner for a signed-in user.
    assert all(not link.proto.query_string for link in at.sidebar.page_link)


def test_login_configured_but_signed_out_offers_sign_in(db_path: Path) -> None:
    at = new_app({"learner": "zed"}, user={"is_logged_in": False}).run()
    assert not at.exception
    assert at.button(key="home_login") is not None
    assert "Learning as **zed**" in sidebar_text(at)


def test_without_login_configured_there_is_no_sign_in_button(db_path: Path) -> None:
    at = new_app({"learner": "zed"}).run()  # AppTest's default user has no is_logged_in key
    assert "home_login" not in [b.key for b in at.button]


def _keys(db_path: Path) -> set[str]:
    with sqlite3.connect(db_path) as conn:
        return {row[0] for row in conn.execute("select learner from quiz_results union "
                                                "select learner from lesson_visits")}
