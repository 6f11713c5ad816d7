"""Learner progress: quiz results, lesson visits, predictions and display names, in SQLite or
PostgreSQL (see `store`).

`schema` holds the tables, `faults` the one exception type and its learner-readable messages,
`engines` one SQLAlchemy engine per URL, `claims` the move of an old name's records, and `store`
the `ProgressStore`. Import from here; patch `engines` or `store` in tests.
"""

from lessons.course.progress.engines import dispose
from lessons.course.progress.faults import ProgressUnavailable
from lessons.course.progress.schema import LESSONS, PASS_FRACTION, SCHEMA_VERSION, LessonProgress
from lessons.course.progress.store import ENV_VAR, ProgressStore, default_url

__all__ = [
    "ENV_VAR",
    "LESSONS",
    "PASS_FRACTION",
    "SCHEMA_VERSION",
    "LessonProgress",
    "ProgressStore",
    "ProgressUnavailable",
    "default_url",
    "dispose",
]
