"""Keep Python's full garbage collections off the slider's path.

Every figure build leaves cyclic garbage (plotly objects point at their parents), so Python's
generational GC runs a full (generation 2) collection every few dozen reruns — and a full sweep
walks the whole heap: torch, plotly's validators, pandas, the lesson models. Measured in the
live server (gc.callbacks): 100–160 ms per sweep, the p95 of a 20 ms slider move.

`gc.freeze()` (Python ≥ 3.7, the trick Instagram published for forked servers) moves every object
alive now into a permanent generation that collections skip. Called once after a page's first run
— when its imports, cached models and figures' validators exist — it leaves later sweeps only
the objects made since. Frozen objects are still freed by reference counting; only cycles among
them would outlive the process, and they are modules and caches that live that long anyway.
"""

from __future__ import annotations

import gc
import sys
import threading

_lock = threading.Lock()
_frozen_at_modules = 0  # len(sys.modules) at the last freeze


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
