"""Warm the server's heavy work once per process, in the background, as soon as anyone visits.

A lesson's first view used to pay for importing torch and Plotly, loading the language model and
routing its first passage (seconds on 2 cores). Streamlit has no start-up hook, so the first page
run of the process (home or any lesson) starts one daemon thread that does that work through the
same `st.cache_resource` / `st.cache_data` functions the lessons call; whatever finishes before a
learner opens a lesson is then served from the cache. It starts START_DELAY_S after that run
began, once the page is drawn: run alongside, it took CPU from the page and the browser (home
page 1.63-1.86 s without it, 2.05-2.17 s with it, bench/RESULTS.md). A lesson package may define
`warm()` for the heavy work of its default view (Lesson 5's training runs and its 4-process job
took 4.9 s of a cold visit); they run in lesson order, after the shared models. Failures are
logged, never shown: the lesson that needs the thing will report it in its own words.
"""

from __future__ import annotations

import importlib
import logging
import threading

from lessons.course.heap import freeze_startup_heap

_log = logging.getLogger(__name__)
_started = threading.Event()
START_DELAY_S = 2.0  # let the first page draw: a warm-up racing it made the home page 0.3 s slower
LESSON_MODULES = ("lesson1_what_is_moe", "lesson2_router", "lesson3_experts", "lesson4_balancing",
                  "lesson5_scale")  # fmt: skip


def warm_up_in_background() -> None:
    """Start the warm-up thread unless this process already has (cheap to call on every run)."""
    if _started.is_set():
        return
    _started.set()
    timer = threading.Timer(START_DELAY_S, _warm)
    timer.name, timer.daemon = "moe-lab-warm-up", True
    timer.start()


def _warm() -> None:
    try:
        from lessons.course import lm_view, models

        if lm_view.lm_available():
            lm_view.get_lm()
            for text in list(lm_view.example_passages().values())[:1]:
                lm_view.route_text(text)
        models.get_model()
        modules = [importlib.import_module(f"lessons.{name}") for name in LESSON_MODULES]
    except Exception:
        _log.exception("warming the lessons' models failed; each lesson will load what it needs")
        return
    for module in modules:
        warm = getattr(module, "warm", None)
        if warm is None:
            continue
        try:
            warm()
        except Exception:
            _log.exception("warming %s failed; it will compute its view when opened", module.__name__)
    freeze_startup_heap()  # the lessons' imports and models now sit out of every full GC sweep
