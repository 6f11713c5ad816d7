"""Old name keys -> private ids: the work behind `ProgressStore.claim_name`.

Before private learner ids (schema version 1), progress was keyed by the name in `?learner=NAME`.
Opening such a link moves that name's records to the browser's id once (contract 5); the rows are
merged with any the id already has, as two attempts at the same quiz would be: best score, attempts
summed, passed if either passed, the earliest first attempt and pass, the latest attempt and visit,
the prediction made first (the id's own, if it has one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, case, delete, or_, select

from lessons.course.progress.schema import lesson_visits, predictions, quiz_results


def move_records(conn: Connection, insert: Callable[[sa.Table], Any], old: str, new: str) -> int:
    """Move every record of learner key `old` to `new` inside the caller's write transaction, merging
    with what `new` has; returns how many records moved. `insert` is the dialect's INSERT with
    ON CONFLICT (`ProgressStore._insert`)."""
    moved = 0
    q = quiz_results.c
    for row in conn.execute(select(quiz_results).where(q.learner == old)).all():
        values = {**row._mapping, "learner": new}
        ins = insert(quiz_results).values(**values)
        ex = ins.excluded
        conn.execute(ins.on_conflict_do_update(index_elements=[q.learner, q.lesson], set_={
            "best_score": case((ex.best_score > q.best_score, ex.best_score), else_=q.best_score),
            "attempts": q.attempts + ex.attempts,
            "passed": or_(q.passed, ex.passed),
            "first_attempt_at": case((ex.first_attempt_at < q.first_attempt_at, ex.first_attempt_at),
                                     else_=q.first_attempt_at),
            "last_attempt_at": case((ex.last_attempt_at > q.last_attempt_at, ex.last_attempt_at),
                                    else_=q.last_attempt_at),
            "passed_at": case((q.passed_at.is_(None), ex.passed_at),
                              (ex.passed_at < q.passed_at, ex.passed_at), else_=q.passed_at),
        }))
        moved += 1
    v = lesson_visits.c
    for row in conn.execute(select(lesson_visits).where(v.learner == old)).all():
        ins = insert(lesson_visits).values(**{**row._mapping, "learner": new})
        later = case((ins.excluded.last_visited_at > v.last_visited_at, ins.excluded.last_visited_at),
                     else_=v.last_visited_at)
        conn.execute(ins.on_conflict_do_update(index_elements=[v.learner, v.lesson],
                                               set_={"last_visited_at": later}))
        moved += 1
    p = predictions.c
    for row in conn.execute(select(predictions).where(p.learner == old)).all():
        ins = insert(predictions).values(**{**row._mapping, "learner": new})
        conn.execute(ins.on_conflict_do_nothing(index_elements=[p.learner, p.lesson, p.key]))
        moved += 1
    for table in (quiz_results, lesson_visits, predictions):
        conn.execute(delete(table).where(table.c.learner == old))
    return moved
