"""The background warm-up loads what the lessons need, once per process, and never raises."""

from __future__ import annotations

import logging
import sys

import pytest

from lessons.course import warm_up


def test_warm_up_loads_the_lessons_and_logs_no_failure(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger=warm_up.__name__):
        warm_up._warm()  # the thread's body, run here so the test sees its end
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    assert all(f"lessons.{name}" in sys.modules for name in warm_up.LESSON_MODULES)


def test_warm_up_starts_one_thread_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    started = []
    monkeypatch.setattr(warm_up, "_started", type(warm_up._started)())
    monkeypatch.setattr(warm_up.threading, "Thread", lambda **kw: started.append(kw) or _NoThread())
    for _ in range(3):
        warm_up.warm_up_in_background()
    assert len(started) == 1 and started[0]["daemon"] is True


class _NoThread:
    def start(self) -> None:
        pass
