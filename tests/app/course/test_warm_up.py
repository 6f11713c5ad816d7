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


def test_warm_up_starts_one_delayed_thread_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    started = []
    monkeypatch.setattr(warm_up, "_started", type(warm_up._started)())

    def timer(delay: float, fn) -> _NoThread:
        started.append(_NoThread(delay, fn))
        return started[-1]

    monkeypatch.setattr(warm_up.threading, "Timer", timer)
    for _ in range(3):
        warm_up.warm_up_in_background()
    assert len(started) == 1
    made = started[0]
    assert made.fn is warm_up._warm and made.daemon is True and made.began
    assert made.delay == warm_up.START_DELAY_S > 0  # the first page draws before the warm-up competes


class _NoThread:
    def __init__(self, delay: float, fn) -> None:
        self.delay, self.fn, self.daemon, self.began = delay, fn, False, False

    def start(self) -> None:
        self.began = True


def test_a_failing_lesson_warm_is_logged_and_the_next_lesson_still_warms(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import lessons.lesson3_experts as lesson3
    import lessons.lesson5_scale as lesson5

    ran = []
    monkeypatch.setattr(lesson3, "warm", lambda: (_ for _ in ()).throw(RuntimeError("no text")))
    monkeypatch.setattr(lesson5, "warm", lambda: ran.append("lesson5"))
    with caplog.at_level(logging.ERROR, logger=warm_up.__name__):
        warm_up._warm()
    assert ran == ["lesson5"]
    assert [r.getMessage() for r in caplog.records] == [
        "warming lessons.lesson3_experts failed; it will compute its view when opened"]


def test_every_page_run_asks_for_the_warm_up(db_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's first page run starts it (it was written once and never called: Lesson 5's
    first visit took 4.9 s on a server that had been up for 15 s)."""
    from streamlit.testing.v1 import AppTest

    import lessons.course.page as page
    from tests.app.conftest import APP

    calls = []
    monkeypatch.setenv("MOE_LAB_WARM_UP", "1")
    monkeypatch.setattr(page, "warm_up_in_background", lambda: calls.append(1))
    AppTest.from_file(APP, default_timeout=60).run()
    assert calls == [1]
    monkeypatch.setenv("MOE_LAB_WARM_UP", "0")
    AppTest.from_file(APP, default_timeout=60).run()
    assert calls == [1]


def test_the_warm_up_route_serves_the_pages_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """route_text(t) (the warm-up, Lesson 1) and route_text(t, top_k=2, temperature=1.0,
    noise_std=0.0) (Lesson 2) must be one cache entry: st.cache_data keys on how arguments are
    passed, and they were two, so the warm-up's routing served nobody."""
    from lessons.course import lm_view

    runs = []
    real = lm_view.forward_with_routing
    monkeypatch.setattr(lm_view, "forward_with_routing", lambda *a, **k: runs.append(1) or real(*a, **k))
    text = f"def warm_{id(runs)}(x):\n    return x\n"  # not routed by any other test
    first = lm_view.route_text(text)
    again = lm_view.route_text(text, top_k=2, temperature=1.0, noise_std=0.0)
    assert runs == [1] and first.bits == again.bits
    lm_view.route_text(text, top_k=3)
    assert runs == [1, 1]  # other settings still route again
