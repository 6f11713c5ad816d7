"""A SQLite progress file that is corrupt, read-only or locked by another program.

What a learner must get each time: a clear notice, a lesson that still works (its body, its
quiz graded), and a file that MoE Lab did not overwrite or delete. The faults are real: bytes
on disk, a read-only open, a lock held by a second process; the pages run through AppTest.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lessons.course import progress
from lessons.course.progress import ProgressStore
from tests.deploy._apptest import assert_lesson_works, open_app, shown, take_quiz, warnings

NOT_SAVED = re.compile(r"can't be saved|not (yet )?saved|not stored", re.IGNORECASE)


@pytest.fixture(autouse=True)
def _fresh_engines() -> Iterator[None]:
    yield
    progress.dispose()  # no pooled connection outlives its test file


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def use(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("MOE_LAB_DATABASE_URL", url)


def notices_matching(at, pattern: str) -> list[str]:
    return [w for w in warnings(at) if re.search(pattern, w, re.IGNORECASE)]


@pytest.mark.parametrize(
    "content",
    [
        b"My thesis draft - not a database.\n" * 200,  # a file the learner pointed at by mistake
        b"SQLite format 3\x00" + bytes(range(256)) * 48,  # a database whose pages were overwritten
    ],
    ids=["not-sqlite", "damaged-sqlite"],
)
def test_corrupt_file_gives_a_notice_and_is_left_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes
) -> None:
    path = tmp_path / "progress.db"
    path.write_bytes(content)
    before = digest(path)
    use(monkeypatch, f"sqlite:///{path}")

    at = open_app(1, {"learner": "Flo"})
    assert_lesson_works(at, 1)
    assert notices_matching(at, r"damaged|not a SQLite database|malformed"), warnings(at)

    at = take_quiz(at, 1)
    assert "Lesson passed" in shown(at)  # graded and shown, even though it cannot be stored
    assert [w for w in warnings(at) if NOT_SAVED.search(w)], warnings(at)
    assert not at.exception

    at.switch_page("app.py").run()  # the home page (which retries the save) still works
    assert not at.exception
    assert digest(path) == before, "MoE Lab wrote to a file that is not its database"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["progress.db"]


def test_read_only_database_still_shows_progress_and_says_it_cannot_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "progress.db"
    ProgressStore(f"sqlite:///{path}").record_quiz("Ro", 1, 1.0)  # an earlier pass, on disk
    progress.dispose()
    before = digest(path)
    # A real read-only open (root ignores file modes, so chmod would not stop this test's writes).
    use(monkeypatch, f"sqlite:///file:{path}?mode=ro&uri=true")

    at = open_app(2, {"learner": "Ro"})
    assert_lesson_works(at, 2)
    assert "1 / 5 completed" in shown(at)  # reading works

    at = take_quiz(at, 2)
    assert "Lesson passed" in shown(at)
    assert notices_matching(at, r"read-only|read only"), warnings(at)
    assert "2 / 5 completed" in shown(at)  # this session's pass is shown (marked not saved)
    assert digest(path) == before


LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")  # what a backup tool or a stuck writer does
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin
conn.execute("ROLLBACK")
"""


def test_locked_database_gives_a_notice_then_saves_once_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "progress.db"
    ProgressStore(f"sqlite:///{path}").record_quiz("Lu", 1, 1.0)
    progress.dispose()
    use(monkeypatch, f"sqlite:///{path}")
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout.readline().strip() == "locked"
        before = digest(path)
        at = open_app(3, {"learner": "Lu"})
        assert_lesson_works(at, 3)
        assert notices_matching(at, r"busy|locked"), warnings(at)

        at = take_quiz(at, 3)
        assert "Lesson passed" in shown(at)
        assert [w for w in warnings(at) if NOT_SAVED.search(w)], warnings(at)
        assert digest(path) == before
    finally:
        locker.communicate("", timeout=30)  # release the lock
    # The next page of the same session saves what was pending, with no restart.
    at.switch_page("app.py").run()
    assert not at.exception
    assert not notices_matching(at, r"busy|locked|can't be saved"), warnings(at)
    assert "2 / 5 completed" in shown(at)
    with sqlite3.connect(path) as conn:
        rows = conn.execute("select q.lesson, q.passed from quiz_results q join learners l "
                            "on l.id = q.learner where l.display_name = 'Lu' order by q.lesson").fetchall()
    assert rows == [(1, 1), (3, 1)]
