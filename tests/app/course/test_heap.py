"""lessons.course.heap: the start-up heap is frozen once per new set of imports, so full GC sweeps skip it."""

from __future__ import annotations

import gc
import sys
import types

import pytest

from lessons.course import heap


def test_freezes_once_then_only_after_new_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_frozen_at_modules", 0)
    assert heap.freeze_startup_heap()
    frozen = gc.get_freeze_count()
    assert frozen > 1000  # the test process's modules and everything they hold
    assert not heap.freeze_startup_heap()  # nothing new: no second collection
    fake = types.ModuleType("fake")
    fake.payload = [[n] for n in range(3)]  # containers the collector tracks, made after the freeze
    monkeypatch.setitem(sys.modules, "moe_lab_test_fake_module", fake)
    assert _tracked_outside_frozen(fake.payload)
    assert heap.freeze_startup_heap()
    # Frozen now (gc.get_objects leaves the permanent generation out). Not a count comparison: frozen
    # objects freed meanwhile by other threads make gc.get_freeze_count() go down as well as up.
    assert not _tracked_outside_frozen(fake.payload)


def _tracked_outside_frozen(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())


def test_a_full_collection_skips_the_frozen_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_frozen_at_modules", 0)
    heap.freeze_startup_heap()
    tracked_after = len(gc.get_objects())  # get_objects() leaves the permanent generation out
    gc.unfreeze()
    try:
        assert len(gc.get_objects()) > 2 * tracked_after
    finally:
        gc.freeze()


def test_a_page_only_schedules_the_collection_in_another_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The page run must not wait for the sweep (0.1-0.2 s held back "script finished")."""
    import threading

    monkeypatch.setattr(heap, "_frozen_at_modules", 0)
    monkeypatch.setattr(heap, "_pending", None)
    collected_in: list[str] = []
    monkeypatch.setattr(heap.gc, "collect", lambda: collected_in.append(threading.current_thread().name) or 0)
    assert heap.freeze_startup_heap_soon(delay_s=0.2)
    assert not heap.freeze_startup_heap_soon(delay_s=0.2)  # one already scheduled
    assert collected_in == []  # nothing swept on the caller's thread
    heap._pending.join(timeout=10)
    assert collected_in == ["moe-lab-heap-freeze"]
    assert not heap.freeze_startup_heap_soon()  # frozen, nothing imported since
