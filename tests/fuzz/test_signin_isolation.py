"""With sign-in configured, no crafted URL lets one learner read or change another's progress.

`st.user` is stubbed through AppTest (`at.user`): Alice is signed in; Bob has progress both as a
signed-in account and under a plain URL name. Alice tries every way of naming Bob in the URL —
his plain name, his account's storage key, padded and re-cased variants — then takes a quiz and
erases her progress. A visitor who is not signed in tries the same, and also every way of naming
Carol, a learner without an account whose browser remembers her: her display name, her private
id, a resume link one character off. Bob's and Carol's records are read back with sqlite3 and
must not change.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lessons.course.progress import ProgressStore
from tests.deploy._apptest import open_app, shown, take_quiz

ALICE = {"is_logged_in": True, "sub": "alice-sub-0001", "name": "Alice", "email": "alice@example.com"}
SIGNED_OUT = {"is_logged_in": False}  # st.login configured, nobody signed in
BOB_ACCOUNT = "sso:bob-sub-0002"  # how a signed-in Bob's progress is keyed
CRAFTED = ["bob", BOB_ACCOUNT, f" {BOB_ACCOUNT} ", BOB_ACCOUNT.upper(), "sso:alice-sub-0001",
           f"{BOB_ACCOUNT}\u200b", "guest"]


@pytest.fixture
def seeded(module_db: Path) -> Path:
    """Bob's account has passed lessons 2 and 3; the URL learner "bob" lesson 4; Alice lesson 1."""
    with sqlite3.connect(module_db) as conn:  # start from nothing: tests here change records
        for table in ("quiz_results", "lesson_visits", "predictions", "learners"):
            if conn.execute("select 1 from sqlite_master where name = ?", (table,)).fetchone():
                conn.execute(f"delete from {table}")
    store = ProgressStore(f"sqlite:///{module_db}")
    store.record_quiz(BOB_ACCOUNT, 2, 1.0)
    store.record_quiz(BOB_ACCOUNT, 3, 0.9)
    store.record_quiz("bob", 4, 1.0)
    store.record_quiz("sso:" + ALICE["sub"], 1, 1.0)
    return module_db


def records(db: Path, learner: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("select lesson, best_score, attempts, passed from quiz_results "
                            "where learner = ? order by lesson", (learner,)).fetchall()


@pytest.mark.parametrize("crafted", CRAFTED, ids=range(len(CRAFTED)))
def test_signed_in_learner_sees_only_their_own_progress(seeded: Path, crafted: str) -> None:
    at = open_app(None, {"learner": crafted}, user=ALICE)
    assert not at.exception
    text = shown(at)
    assert "1 / 5 completed" in text, text[-600:]
    assert "Signed in as **Alice**" in text
    assert "learner" not in at.query_params  # the crafted name is dropped from the URL
    at.switch_page("pages/3_Experts_and_Sparse_Compute.py").run()
    assert "1 / 5 completed" in shown(at)  # lesson 3 is Bob's, not Alice's


def test_signed_in_learner_writes_only_their_own_record(seeded: Path) -> None:
    bob_before = records(seeded, BOB_ACCOUNT)
    at = open_app(5, {"learner": BOB_ACCOUNT}, user=ALICE)
    at = take_quiz(at, 5)
    assert "Lesson passed" in shown(at)
    assert records(seeded, BOB_ACCOUNT) == bob_before
    assert [r[0] for r in records(seeded, "sso:" + ALICE["sub"])] == [1, 5]


def test_erasing_progress_erases_only_the_signed_in_learner(seeded: Path) -> None:
    bob_account, bob_name = records(seeded, BOB_ACCOUNT), records(seeded, "bob")
    at = open_app(None, {"learner": BOB_ACCOUNT}, user=ALICE)
    at.checkbox(key="home_reset_confirm").check().run()
    at.button(key="home_reset").click().run()
    assert "0 / 5 completed" in shown(at)
    assert records(seeded, "sso:" + ALICE["sub"]) == []
    assert records(seeded, BOB_ACCOUNT) == bob_account, "Alice's reset erased Bob's account"
    assert records(seeded, "bob") == bob_name, "Alice's reset erased another learner's progress"


@pytest.mark.parametrize("crafted", [BOB_ACCOUNT, "sso:" + ALICE["sub"]], ids=["bob", "alice"])
def test_signed_out_visitor_cannot_open_an_account_by_url(seeded: Path, crafted: str) -> None:
    account_before = records(seeded, crafted)
    at = open_app(None, {"learner": crafted}, user=SIGNED_OUT)
    assert not at.exception
    text = shown(at)
    assert "0 / 5 completed" in text, f"a signed-out visitor read {crafted}'s progress:\n{text[-600:]}"
    at.switch_page("pages/4_Load_Balancing.py").run()
    take_quiz(at, 4)
    assert records(seeded, crafted) == account_before, f"a signed-out visitor changed {crafted}'s progress"


@pytest.fixture
def carol(seeded: Path) -> str:
    """A learner without an account: her browser keeps her id; she passed lesson 2 as "Carol"."""
    at = open_app(None, {"learner": "Carol"}, user=SIGNED_OUT)
    key = at.session_state["learner_current"].key
    take_quiz(at.switch_page("pages/2_The_Router.py").run(), 2)
    assert records(seeded, key)[0][:1] == (2,)
    return key


def _one_off(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


@pytest.mark.parametrize("how", ["name", "name-variant", "id", "id-as-name", "resume-one-off"])
@pytest.mark.parametrize("user", [SIGNED_OUT, None], ids=["login-configured", "no-login"])
def test_nobody_reaches_a_remembered_learner_by_url(seeded: Path, carol: str, how: str,
                                                     user: dict | None) -> None:
    token = carol.removeprefix("browser:")
    query = {"name": {"learner": "Carol"}, "name-variant": {"learner": " carol\u200b "},
             "id": {"learner": carol}, "id-as-name": {"learner": token},
             "resume-one-off": {"resume": _one_off(token)}}[how]
    before = records(seeded, carol)
    at = open_app(None, query, user=user)
    assert not at.exception
    assert "0 / 5 completed" in shown(at), f"{how} opened Carol's progress"
    assert at.session_state["learner_current"].key != carol
    take_quiz(at.switch_page("pages/4_Load_Balancing.py").run(), 4)
    at.switch_page("app.py").run()
    at.checkbox(key="home_reset_confirm").check().run()
    at.button(key="home_reset").click().run()
    assert records(seeded, carol) == before, f"{how} changed Carol's progress"
