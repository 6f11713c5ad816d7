"""The progress database's tables and their version: what a row means, independent of any engine.

Schema changes: the `schema_version` table records the version the tables follow. A database from a
newer MoE Lab is refused rather than misread (`store.ProgressStore`); an older one is brought up to
`SCHEMA_VERSION` by the steps in `MIGRATIONS`, in one transaction, losing nothing.

Versions: 1 = quiz_results, lesson_visits. 2 adds `predictions` (the "Predict, then try" answers,
issue 17) and `learners` (a private learner id -> the display name the learner typed; contract 5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, func, inspect, select, text

from lessons.course.identity import MAX_LEARNER_CHARS

SCHEMA_VERSION = 2  # bump with a migration step (MIGRATIONS) when a table changes
LESSONS = range(1, 6)  # lessons 1..5
PASS_FRACTION = 0.8  # a quiz passes at >= 80%, as in lessons/content/lesson*/quiz.toml

metadata = sa.MetaData()
schema_version = sa.Table("schema_version", metadata, sa.Column("version", sa.Integer, nullable=False))
quiz_results = sa.Table(
    "quiz_results",
    metadata,
    sa.Column("learner", sa.String(MAX_LEARNER_CHARS), primary_key=True),
    sa.Column("lesson", sa.Integer, primary_key=True),
    sa.Column("best_score", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),  # sticky: once passed, always completed
    sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("passed_at", sa.DateTime(timezone=True), nullable=True),
)
lesson_visits = sa.Table(
    "lesson_visits",
    metadata,
    sa.Column("learner", sa.String(MAX_LEARNER_CHARS), primary_key=True),
    sa.Column("lesson", sa.Integer, primary_key=True),
    sa.Column("last_visited_at", sa.DateTime(timezone=True), nullable=False),
)
MAX_PREDICTION_KEY_CHARS = 64
MAX_ANSWER_CHARS = 500  # an option's text; options are written by the course, not typed
predictions = sa.Table(  # version 2: one locked-in prediction per learner, lesson and question
    "predictions",
    metadata,
    sa.Column("learner", sa.String(MAX_LEARNER_CHARS), primary_key=True),
    sa.Column("lesson", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(MAX_PREDICTION_KEY_CHARS), primary_key=True),
    sa.Column("answer", sa.String(MAX_ANSWER_CHARS), nullable=False),
    sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
)
learners = sa.Table(  # version 2: the name is only shown; progress is keyed by the private id
    "learners",
    metadata,
    sa.Column("id", sa.String(MAX_LEARNER_CHARS), primary_key=True),
    sa.Column("display_name", sa.String(MAX_LEARNER_CHARS), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class LessonProgress:
    """One learner's quiz record for one lesson (timestamps in UTC)."""

    lesson: int
    best_score: float  # best fraction correct over all attempts, 0..1
    attempts: int
    passed: bool  # some attempt scored >= the pass fraction
    first_attempt_at: datetime
    last_attempt_at: datetime
    passed_at: datetime | None

    @property
    def completed(self) -> bool:
        """A lesson counts as completed once any quiz attempt passed."""
        return self.passed



def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    # SQLite hands back naive datetimes; they were written as UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def read_version(conn: Connection) -> int | None:
    if not inspect(conn).has_table(schema_version.name):
        return None
    return conn.scalar(select(func.max(schema_version.c.version)))


def _add_predictions_and_learners(conn: Connection) -> None:
    metadata.create_all(conn, tables=[predictions, learners], checkfirst=True)


# version -> the step that brings a database of that version to the next one. Steps only add
# tables or columns: a migration never rewrites or drops what a learner has stored.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _add_predictions_and_learners}


def create_schema(conn: Connection) -> int:
    """Create missing tables, or migrate older ones, and record the version, inside the caller's
    write transaction. Returns the version the database follows now (newer ones are left as they
    are: the caller refuses them)."""
    if conn.dialect.name == "postgresql":
        # Two app processes starting together must not both create (or migrate) the tables.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('moe_lab.schema'))"))
    version = read_version(conn)  # someone may have created or migrated it while we waited
    if version is None:
        metadata.create_all(conn, checkfirst=True)
        conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
        return SCHEMA_VERSION
    if 1 <= version < SCHEMA_VERSION:
        for step in range(version, SCHEMA_VERSION):
            MIGRATIONS[step](conn)
        conn.execute(schema_version.update().values(version=SCHEMA_VERSION))
        return SCHEMA_VERSION
    return version


def to_progress(row: Any) -> LessonProgress:
    return LessonProgress(
        lesson=row.lesson,
        best_score=float(row.best_score),
        attempts=int(row.attempts),
        passed=bool(row.passed),
        first_attempt_at=as_utc(row.first_attempt_at),
        last_attempt_at=as_utc(row.last_attempt_at),
        passed_at=as_utc(row.passed_at),
    )
