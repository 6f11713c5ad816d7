"""Learner progress: quiz results, lesson visits, predictions and display names, in SQLite or
PostgreSQL via SQLAlchemy.

Where it lives (contract 5 of shared/DESIGN.md): the URL passed in, else `MOE_LAB_DATABASE_URL`,
else a SQLite file at `~/.moe_lab/progress.db`. PostgreSQL works as `postgresql+psycopg://...`.

What it promises:
- One quiz attempt is one transaction with a single INSERT ... ON CONFLICT DO UPDATE, so concurrent
  writers (threads, processes, app replicas) never lose an attempt or lower a best score.
- Once `record_quiz` returns, the attempt is committed: a new process on the same URL sees it.
- Every failure reaches the caller as `ProgressUnavailable`, whose message a learner can read.
  The app keeps teaching when progress can't be stored; it only tells the learner so.
- A file that is not a SQLite database is refused before anything is written, and left as it was.

Schema changes: the `schema_version` table records the version the tables follow. A database from a
newer MoE Lab is refused rather than misread; an older one is migrated on first use
(`schema.MIGRATIONS`). Learner keys must already be canonical (`lessons.course.identity`).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import (
    Connection,
    case,
    delete,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from lessons.course.identity import normalize_learner_name
from lessons.course.progress.claims import move_records
from lessons.course.progress.engines import engine_for
from lessons.course.progress.faults import (
    ProgressUnavailable,
    busy_message,
    describe_failure,
    prepare_sqlite_file,
)
from lessons.course.progress.schema import (
    LESSONS,
    MAX_ANSWER_CHARS,
    MAX_PREDICTION_KEY_CHARS,
    PASS_FRACTION,
    SCHEMA_VERSION,
    LessonProgress,
    create_schema,
    learners,
    lesson_visits,
    predictions,
    quiz_results,
    read_version,
    to_progress,
)

ENV_VAR = "MOE_LAB_DATABASE_URL"
_BACKENDS = ("sqlite", "postgresql")  # the upsert is written for these two
SQLITE_QUEUE_TIMEOUT_S = 10.0  # this process's own saves queue (each takes ~20 ms) for at most this

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


def default_url() -> str:
    """The URL a store uses when given none: `MOE_LAB_DATABASE_URL`, else `~/.moe_lab/progress.db`."""
    from_env = os.environ.get(ENV_VAR, "").strip()
    if from_env:
        return from_env
    return f"sqlite:///{Path.home() / '.moe_lab' / 'progress.db'}"


# --- the store -------------------------------------------------------------------------------

_last_stamp = datetime.min.replace(tzinfo=UTC)
_stamp_lock = threading.Lock()


def _now() -> datetime:
    """UTC now, strictly increasing within the process so the latest visit is unambiguous."""
    global _last_stamp
    with _stamp_lock:
        _last_stamp = max(datetime.now(UTC), _last_stamp + timedelta(microseconds=1))
        return _last_stamp


class ProgressStore:
    """Quiz results, lesson visits and predictions per learner id, and each id's display name.

    Construction does not touch the database: the first call does (creating tables if missing),
    so a server that is down at start-up only makes calls fail until it is back. Every method
    raises `ProgressUnavailable` when the database cannot serve it, and `ValueError` for a lesson
    outside 1..5, a score outside 0..1 or a learner name that is not canonical.
    """

    def __init__(self, url: str | URL | None = None) -> None:
        try:
            self.url = make_url(url if url is not None else default_url())
            backend = self.url.get_backend_name()
            self._engine, self._queue = engine_for(self.url) if backend in _BACKENDS else (None, None)
        except ImportError as exc:  # e.g. postgresql+psycopg without psycopg installed
            raise ProgressUnavailable.because(f"the database driver is not installed ({exc})") from exc
        except (SQLAlchemyError, ValueError, RuntimeError) as exc:  # RuntimeError: no home folder
            raise ProgressUnavailable.because(
                f"the database address (from {ENV_VAR} or the app) is not a valid SQLAlchemy URL"
            ) from exc
        if self._engine is None:
            raise ProgressUnavailable.because(
                f"MoE Lab keeps progress in SQLite or PostgreSQL, not {backend}"
            )
        self._ready = False
        self._ready_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ProgressStore({self.url.render_as_string(hide_password=True)!r})"

    # --- public API ----------------------------------------------------------------------

    def record_quiz(
        self, learner: str, lesson: int, score: float, *, pass_fraction: float = PASS_FRACTION
    ) -> LessonProgress:
        """Record one quiz attempt (score = fraction correct, 0..1) and return the updated record.

        Keeps the best score, counts the attempt and marks the lesson completed when
        score >= pass_fraction; a worse later attempt never un-completes it.
        """
        _check_learner(learner)
        _check_lesson(lesson)
        score = _check_fraction("score", score)
        passed = score >= _check_fraction("pass_fraction", pass_fraction)
        stamp = _now()
        new = self._insert(quiz_results).values(
            learner=learner,
            lesson=lesson,
            best_score=score,
            attempts=1,
            passed=passed,
            first_attempt_at=stamp,
            last_attempt_at=stamp,
            passed_at=stamp if passed else None,
        )
        old, ex = quiz_results.c, new.excluded
        # Each new value is computed from the row *as locked by this statement*, so two
        # concurrent attempts both count and the higher score wins whatever their order.
        upsert = new.on_conflict_do_update(
            index_elements=[old.learner, old.lesson],
            set_={
                "best_score": case((ex.best_score > old.best_score, ex.best_score), else_=old.best_score),
                "attempts": old.attempts + 1,
                "passed": or_(old.passed, ex.passed),
                "last_attempt_at": ex.last_attempt_at,
                "passed_at": func.coalesce(old.passed_at, ex.passed_at),
            },
        ).returning(*quiz_results.c)
        row = self._run(lambda conn: conn.execute(upsert).one(), write=True)
        return to_progress(row)

    def progress(self, learner: str) -> dict[int, LessonProgress]:
        """Quiz records by lesson number; lessons never attempted are absent."""
        _check_learner(learner)
        query = select(quiz_results).where(quiz_results.c.learner == learner)
        rows = self._run(lambda conn: conn.execute(query).all())
        return {row.lesson: to_progress(row) for row in rows}

    def completed_count(self, learner: str) -> int:
        """How many lessons this learner has passed a quiz for (0..5)."""
        _check_learner(learner)
        query = select(func.count()).where(quiz_results.c.learner == learner, quiz_results.c.passed)
        return int(self._run(lambda conn: conn.scalar(query)) or 0)

    def mark_visited(self, learner: str, lesson: int) -> None:
        """Remember that the learner opened `lesson` now (for "continue where you left off")."""
        _check_learner(learner)
        _check_lesson(lesson)
        new = self._insert(lesson_visits).values(learner=learner, lesson=lesson, last_visited_at=_now())
        upsert = new.on_conflict_do_update(
            index_elements=[lesson_visits.c.learner, lesson_visits.c.lesson],
            set_={"last_visited_at": new.excluded.last_visited_at},
        )
        self._run(lambda conn: conn.execute(upsert), write=True)

    def last_visited(self, learner: str) -> int | None:
        """The lesson this learner opened most recently, or None if none yet."""
        _check_learner(learner)
        query = (
            select(lesson_visits.c.lesson)
            .where(lesson_visits.c.learner == learner)
            .order_by(lesson_visits.c.last_visited_at.desc(), lesson_visits.c.lesson.desc())
            .limit(1)
        )
        return self._run(lambda conn: conn.scalar(query))

    def record_prediction(self, learner: str, lesson: int, key: str, answer: str) -> str:
        """Keep the learner's prediction for question `key` of `lesson`; returns the one kept.

        A prediction is locked in: the first one stored wins, so a second tab that answers after
        seeing the outcome does not rewrite it (the caller shows what this returns)."""
        _check_learner(learner)
        _check_lesson(lesson)
        _check_text("prediction key", key, MAX_PREDICTION_KEY_CHARS)
        _check_text("answer", answer, MAX_ANSWER_CHARS)
        new = self._insert(predictions).values(
            learner=learner, lesson=lesson, key=key, answer=answer, answered_at=_now()
        ).on_conflict_do_nothing(index_elements=[predictions.c.learner, predictions.c.lesson,
                                                 predictions.c.key])
        kept = select(predictions.c.answer).where(
            predictions.c.learner == learner, predictions.c.lesson == lesson, predictions.c.key == key
        )

        def work(conn: Connection) -> str:
            conn.execute(new)
            return conn.scalar(kept)

        return self._run(work, write=True)

    def predictions(self, learner: str, lesson: int) -> dict[str, str]:
        """The learner's predictions in `lesson`: question key -> answer."""
        _check_learner(learner)
        _check_lesson(lesson)
        query = select(predictions.c.key, predictions.c.answer).where(
            predictions.c.learner == learner, predictions.c.lesson == lesson
        )
        return {row.key: row.answer for row in self._run(lambda conn: conn.execute(query).all())}

    def set_display_name(self, learner: str, name: str) -> None:
        """Show `name` (canonical, see identity.normalize_learner_name) for learner id `learner`."""
        _check_learner(learner)
        _check_learner(name)
        new = self._insert(learners).values(id=learner, display_name=name, updated_at=_now())
        upsert = new.on_conflict_do_update(
            index_elements=[learners.c.id],
            set_={"display_name": new.excluded.display_name, "updated_at": new.excluded.updated_at},
        )
        self._run(lambda conn: conn.execute(upsert), write=True)

    def display_name(self, learner: str) -> str | None:
        """The name learner id `learner` chose to be shown, or None if none yet."""
        _check_learner(learner)
        query = select(learners.c.display_name).where(learners.c.id == learner)
        return self._run(lambda conn: conn.scalar(query))

    def claim_name(self, name: str, learner: str) -> int:
        """Move everything stored under the old name key `name` (MoE Lab before private ids kept
        progress under the name in `?learner=NAME`) to learner id `learner`, in one transaction;
        returns how many records moved. Afterwards nothing is stored under `name`, so the name
        alone opens nothing. Records the id already has are merged: best score, attempts summed,
        passed if either passed, the latest visit, the prediction made first."""
        _check_learner(name)
        _check_learner(learner)
        if name == learner:
            raise ValueError("a learner cannot claim its own records")
        return self._run(lambda conn: move_records(conn, self._insert, name, learner), write=True)

    def reset(self, learner: str) -> None:
        """Forget this learner's quiz results, visits, predictions and display name (other learners
        are untouched)."""
        _check_learner(learner)

        def work(conn: Connection) -> None:
            for table in (quiz_results, lesson_visits, predictions):
                conn.execute(delete(table).where(table.c.learner == learner))
            conn.execute(delete(learners).where(learners.c.id == learner))

        self._run(work, write=True)

    def check(self) -> None:
        """Raise ProgressUnavailable unless the database answers and its schema is usable."""
        with self._ready_lock:
            self._ready = False  # re-read the schema version: it may have changed
        self._run(lambda conn: conn.execute(text("SELECT 1")).one())

    # --- transactions, retry and faults -------------------------------------------------

    def _insert(self, table: sa.Table) -> Any:
        """INSERT with ON CONFLICT support: both dialects spell the upsert the same way."""
        return (postgresql_insert if self.url.get_backend_name() == "postgresql" else sqlite_insert)(table)

    def _run(self, work: Callable[[Connection], _T], *, write: bool = False) -> _T:
        """Run `work` in one transaction; retry once if the connection was dropped before commit.

        A retry after a failed COMMIT could count an attempt twice, so only failures before the
        commit are retried (the server rolled those back when the connection died).
        """
        for attempt in (1, 2):
            committing = False
            try:
                self._ensure_schema()
                with self._write_turn(write), self._engine.connect() as conn:
                    conn.execution_options(moe_lab_write=write)
                    with conn.begin():
                        result = work(conn)
                        committing = True
                return result
            except DBAPIError as exc:
                if attempt == 1 and exc.connection_invalidated and not committing:
                    _log.info("progress database connection was dropped; retrying once")
                    continue
                raise self._unavailable(exc) from exc
            except (SQLAlchemyError, OSError) as exc:
                raise self._unavailable(exc) from exc
        raise AssertionError("unreachable")

    @contextmanager
    def _write_turn(self, write: bool) -> Iterator[None]:
        """SQLite lets one connection write at a time, and its busy handler is not fair: under a
        burst, one waiter can sleep through every free moment until its timeout. So this process's
        SQLite writers take turns here, and only other programs are left to the busy timeout."""
        if not write or self.url.get_backend_name() != "sqlite":
            yield
            return
        if not self._queue.acquire(timeout=SQLITE_QUEUE_TIMEOUT_S):
            raise ProgressUnavailable.because(busy_message(self.url))
        try:
            yield
        finally:
            self._queue.release()

    def _unavailable(self, exc: BaseException) -> ProgressUnavailable:
        _log.warning("progress store unavailable (%s): %r", self, exc)
        return ProgressUnavailable.because(describe_failure(exc, self.url))

    def _ensure_schema(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            prepare_sqlite_file(self.url)  # before SQLite may write to the file
            with self._engine.connect() as conn, conn.begin():
                version = read_version(conn)
            if version is None or 1 <= version < SCHEMA_VERSION:  # a new or an older database
                with self._engine.connect() as conn:
                    conn.execution_options(moe_lab_write=True)
                    with conn.begin():
                        version = create_schema(conn)
            if version > SCHEMA_VERSION:
                raise ProgressUnavailable.because(
                    f"this progress database was written by a newer MoE Lab (schema version "
                    f"{version}; this one knows up to {SCHEMA_VERSION}), so it was left as it is. "
                    f"Update MoE Lab, or set {ENV_VAR} to another database"
                )
            if version < 1:
                raise ProgressUnavailable.because(f"its schema_version table is invalid ({version})")
            self._ready = True


# --- argument checks (ValueError: a programming mistake, not a database fault) ----------------


def _check_text(name: str, value: str, limit: int) -> None:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ValueError(f"{name} must be a non-empty str of at most {limit} characters, got {value!r}")


def _check_lesson(lesson: int) -> None:
    if isinstance(lesson, bool) or not isinstance(lesson, int) or lesson not in LESSONS:
        raise ValueError(f"lesson must be an int from {LESSONS.start} to {LESSONS.stop - 1}, got {lesson!r}")


def _check_fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number from 0 to 1, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be from 0 to 1, got {value!r}")
    return float(value)


def _check_learner(learner: str) -> None:
    """Only canonical names are stored, so one person is never split into two learners."""
    if not isinstance(learner, str):
        raise ValueError(f"learner must be a str, got {type(learner).__name__}")
    canonical = normalize_learner_name(learner)
    if canonical.was_empty or canonical.name != learner:
        raise ValueError(
            f"learner name {learner!r} is not canonical: pass it through "
            "lessons.course.identity.normalize_learner_name() first"
        )
