"""A training run or a benchmark that raises: an error message in its panel, the page keeps working.

The fault is injected where the engine is called (`moe_core.train.train` as Lesson 4's worker
calls it, `moe_experts` as Lesson 3's benchmark calls it), as a real kernel or allocator failure
would surface. The page code around it is the real one: it must show a message in the panel —
never a traceback — and the rest of the lesson (other widgets, the quiz) must still work.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import streamlit as st

from lessons.course import progress
from lessons.lesson3_experts import bench as experts_bench
from lessons.lesson4_balancing import runs as balancing_runs
from tests.deploy._apptest import assert_lesson_works, open_app, shown, take_quiz

FAULT = "simulated device failure 0xDEAD"


@pytest.fixture(autouse=True)
def _db(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MOE_LAB_DATABASE_URL", f"sqlite:///{tmp_path / 'progress.db'}")
    yield
    progress.dispose()


def _raise(*_args, **_kwargs):
    raise RuntimeError(FAULT)


def errors(at) -> list[str]:
    return [str(e.value) for e in at.error]


def test_training_run_that_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(balancing_runs, "train", _raise)
    st.cache_data.clear()  # no earlier run may answer from the cache
    at = open_app(4, {"learner": "Tess", "balance_steps": "50", "balance_seed": "4242"})
    assert_lesson_works(at, 4)
    next(b for b in at.button if b.label == "Train").click()
    at.run()
    deadline = time.monotonic() + 30
    while not any(FAULT in e for e in errors(at)):  # the worker fails at once; the panel polls it
        assert time.monotonic() < deadline, f"no error shown in the panel: {errors(at)}"
        time.sleep(0.2)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert_lesson_works(at, 4)
    # The rest of the page works: the quiz is graded and saved.
    at = take_quiz(at, 4)
    assert "Lesson passed" in shown(at)
    assert not at.exception


def test_benchmark_that_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(experts_bench, "moe_experts", _raise)
    st.cache_data.clear()
    at = open_app(3, {"learner": "Ben"})
    assert_lesson_works(at, 3)
    at.button(key="experts_bench_run").click()
    at.run()
    assert not at.exception, f"the benchmark's failure reached the learner as a traceback: {at.exception}"
    assert [e for e in errors(at) if "benchmark" in e.lower()], errors(at)
    assert_lesson_works(at, 3)
    at = take_quiz(at, 3)
    assert "Lesson passed" in shown(at)
    assert not at.exception
