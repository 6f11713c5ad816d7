"""Keep Python's full garbage collections off the slider's path.

Every figure build leaves cyclic garbage (plotly objects point at their parents), so Python's
generational GC runs a full (generation 2) collection every few dozen reruns — and a full sweep
walks the whole heap: torch, plotly's validators, pandas, the lesson models. Measured in the
live server (gc.callbacks): 100–160 ms per sweep, the p95 of a 20 ms slider move.

`gc.freeze()` (Python ≥ 3.7, the trick Instagram published for forked servers) moves every object
alive now into a permanent generation that collections skip. Done once the warm-up has loaded
the lessons, and again after a page's first run if it imported more (its figures' validators) —
it leaves later sweeps only the objects made since. A page only *schedules* it: the collection
itself (0.1-0.2 s) ran at the end of the run and held back "script finished", so Lessons 1, 2 and
5 paid it on their first visit; now it runs a moment later in its own thread.

Frozen objects are still freed by reference counting; only cycles among them would outlive the
process, and they are modules and caches that live that long anyway.
"""

from __future__ import annotations

import gc
import sys
import threading

_lock = threading.Lock()
_frozen_at_modules = 0  # len(sys.modules) at the last freeze
_pending: threading.Timer | None = None  # a scheduled freeze that has not run yet
FREEZE_DELAY_S = 0.5  # after the page run: its last messages are on their way to the browser


def freeze_startup_heap() -> bool:
    """Collect, then freeze the heap, if modules were imported since the last freeze.

    Cheap when nothing new was imported (one comparison); each lesson's first visit pays one
    collection. Returns whether it froze, for tests.
    """
    global _frozen_at_modules
    with _lock:
        if len(sys.modules) <= _frozen_at_modules:
            return False
        gc.collect()  # garbage from start-up must not be frozen with the rest
        gc.freeze()
        _frozen_at_modules = len(sys.modules)
        return True


def freeze_startup_heap_soon(delay_s: float = FREEZE_DELAY_S) -> bool:
    """Schedule `freeze_startup_heap` in a daemon thread, unless nothing new was imported or one
    is already scheduled. For page runs: they must not wait for the collection. Returns whether
    it scheduled one."""
    global _pending
    with _lock:
        if len(sys.modules) <= _frozen_at_modules or (_pending is not None and _pending.is_alive()):
            return False
        _pending = threading.Timer(delay_s, freeze_startup_heap)
        _pending.daemon = True
        _pending.name = "moe-lab-heap-freeze"
        _pending.start()
        return True
