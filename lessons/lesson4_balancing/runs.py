"""Training jobs behind Lesson 4's page: worker threads, live progress, a cache, a concurrency cap.

Why threads: a run takes a second or more, and the learner must see it train (charts redrawn
every few steps) and be able to stop it. So the page starts a `Job` on a worker thread and a
fragment polls `Job.view()` a few times a second; the Stop button sets an event the training
callback checks. Nothing here draws: the page (lessons/lesson4_balancing/__init__.py) does.

* Cache: finished runs are kept by `st.cache_data` keyed by their `RunSpec` (the whole config and,
  for a continuation, the run it continues), shared by every session; revisiting is instant. A
  stopped run raises `RunStopped` instead of returning, so only complete runs are cached.
* Cap: at most MAX_CONCURRENT jobs train at once in the process (a BoundedSemaphore); a learner
  beyond that gets "busy, try again" instead of a slow page for everyone.
* Threads: torch is pinned to one thread: the runs are tiny, and two learners must not fight over
  cores. A run that raises ends its job with `error` set; the page shows it in that panel only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import streamlit as st
import torch

from moe_core.train import Progress, TrainConfig, TrainResult, train

_log = logging.getLogger(__name__)
MAX_CONCURRENT = 2  # training jobs per process
SNAPSHOT_EVERY = 5  # steps between progress reports (the page draws the latest one)
CACHE_ENTRIES = 64  # finished runs kept (each a few hundred kB at most)


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run; hashable, so it is the cache key."""

    config: TrainConfig
    parent: RunSpec | None = None  # continue from the end of this run (recovery)

    @property
    def start_step(self) -> int:
        return self.parent.end_step if self.parent else 0

    @property
    def end_step(self) -> int:
        return self.start_step + self.config.steps

    def truncated(self, step: int) -> RunSpec:
        """The spec of this run stopped at absolute step `step` (same run: nothing depends on the
        total, so a run stopped at k equals a run of k steps)."""
        return replace(self, config=replace(self.config, steps=max(0, step - self.start_step)))


class RunStopped(Exception):
    """Raised by `run` when stopped, so a stopped run is never cached; carries the partial result."""

    def __init__(self, result: TrainResult) -> None:
        super().__init__(f"stopped at step {result.step}")
        self.result = result


class NotCached(Exception):
    pass


@st.cache_data(max_entries=CACHE_ENTRIES, show_spinner=False)
def _stored(spec: RunSpec, _result: TrainResult | None = None) -> TrainResult:
    """The cache of finished runs: `_stored(spec)` looks up, `_stored(spec, _result=r)` stores.

    Training happens outside this function on purpose: st.cache_data holds a per-key lock while
    its function runs, and a lookup must never wait for somebody else's run to finish.
    """
    if _result is None:
        raise NotCached
    return _result


def cached_result(spec: RunSpec) -> TrainResult | None:
    """The finished run for `spec` if some session already trained it, else None (never trains)."""
    try:
        return _stored(spec)
    except NotCached:
        return None


def run(
    spec: RunSpec, on_progress=None, stop: threading.Event | None = None, parent: TrainResult | None = None
) -> TrainResult:
    """The finished run for `spec`: from the cache, or trained (and then cached).

    Raises RunStopped when `stop` is set during training: a stopped run is never cached.
    `parent` may hand over the parent run's result when the caller already has it.
    """
    hit = cached_result(spec)
    if hit is not None:
        return hit
    state = None
    if spec.parent is not None:
        state = (parent if parent is not None else run(spec.parent, stop=stop)).state

    def callback(progress: Progress) -> bool:
        if on_progress is not None:
            on_progress(progress)
        return stop is not None and stop.is_set()

    result = train(spec.config, callback, every=SNAPSHOT_EVERY, state=state)
    if result.stopped:
        raise RunStopped(result)
    return _stored(spec, _result=result)


@st.cache_resource(show_spinner=False)
def _slots() -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(MAX_CONCURRENT)


@dataclass
class JobView:
    """A consistent picture of a job for one redraw."""

    running: bool
    index: int  # which spec of the job is training (or the last one)
    step: int  # absolute step of that spec's run
    total: int  # its end step
    progress: Progress | None  # latest report of the spec training now
    results: list[TrainResult | None]  # per spec: finished or stopped result, None if not reached
    stopped: bool
    error: str | None


@dataclass
class Job:
    """One or more runs trained one after another on a worker thread."""

    specs: Sequence[RunSpec]
    parent_result: TrainResult | None = None  # hands the first spec its parent's end state
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None
    _index: int = 0
    _progress: Progress | None = None
    _results: list[TrainResult | None] = field(default_factory=list)
    _error: str | None = None
    _stopped: bool = False
    polling: bool = False  # the page registered a polling fragment for this job

    def __post_init__(self) -> None:
        self._results = [None] * len(self.specs)

    @classmethod
    def finished(cls, specs: Sequence[RunSpec], results: Sequence[TrainResult]) -> Job:
        """A job whose runs all came from the cache: nothing to train."""
        job = cls(specs)
        job._results = list(results)
        job._index = len(specs) - 1
        return job

    def start(self) -> bool:
        """Start training on a worker thread; False (nothing started) when the process is busy."""
        if not _slots().acquire(blocking=False):
            return False
        self._thread = threading.Thread(target=self._work, name="moe-lab-train", daemon=True)
        self._thread.start()
        return True

    def stop(self, wait_s: float = 0.0) -> None:
        self._stop.set()
        if wait_s and self._thread is not None:
            self._thread.join(wait_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _report(self, progress: Progress) -> None:
        with self._lock:
            self._progress = progress

    def _work(self) -> None:
        torch.set_num_threads(1)
        try:
            for i, spec in enumerate(self.specs):
                with self._lock:
                    self._index, self._progress = i, None
                parent = None  # hand over a parent result we hold, rather than look it up
                if spec.parent is not None and i == 0:
                    parent = self.parent_result
                elif spec.parent is not None and spec.parent == self.specs[i - 1]:
                    parent = self._results[i - 1]
                try:
                    result = run(spec, self._report, self._stop, parent)
                except RunStopped as stopped:
                    with self._lock:
                        self._results[i], self._stopped = stopped.result, True
                    return
                with self._lock:
                    self._results[i] = result
        except Exception as e:  # shown in the job's panel; the rest of the page keeps working
            _log.exception("training job failed")
            with self._lock:
                self._error = f"{type(e).__name__}: {e}"
        finally:
            _slots().release()

    def view(self) -> JobView:
        with self._lock:
            spec = self.specs[self._index]
            progress = self._progress
            result = self._results[self._index]
            step = result.step if result else progress.step if progress else spec.start_step
            return JobView(
                self.running,
                self._index,
                step,
                spec.end_step,
                progress,
                list(self._results),
                self._stopped,
                self._error,
            )


# --- the page's side: one job per slot in the session, drawn by a polling fragment ----------------

POLL_S = 0.3  # seconds between redraws of a training job
BUSY = "Two training runs are already going on this server. Try again in a few seconds."


def job_in(slot: str) -> Job | None:
    return st.session_state.get(f"balance_job_{slot}")


def launch(slot: str, specs: list[RunSpec], parent_result: TrainResult | None = None) -> None:
    """Show `specs` in `slot`: straight from the cache when every run is there, else train them
    (or, when the process is busy, leave the slot as it was and say so)."""
    old = job_in(slot)
    if old is not None and old.running:
        old.stop(wait_s=2.0)
    cached = [cached_result(spec) for spec in specs]
    if all(r is not None for r in cached):
        job = Job.finished(specs, cached)
    else:
        job = Job(specs, parent_result)
        if not job.start():
            st.session_state[f"balance_busy_{slot}"] = True
            return
    st.session_state[f"balance_job_{slot}"] = job


def poll(slot: str, draw: Callable[[], None]) -> None:
    """Draw `slot` in a keyed fragment that reruns itself every POLL_S seconds while its job
    trains. (A full page run clears the browser's timers, so the next one drops the polling.)"""
    job = job_in(slot)
    running = job is not None and job.running
    if job is not None:
        job.polling = running
    st.fragment(draw, run_every=POLL_S if running else None, key=f"balance_{slot}_panel")()


def show_busy(slot: str) -> None:
    if st.session_state.pop(f"balance_busy_{slot}", False):
        st.warning(BUSY, icon=":material/hourglass_top:")


def status(slot: str, view: JobView, label: str = "Training") -> bool:
    """Progress bar, step counter and Stop button; True when the job has ended."""
    job = job_in(slot)
    if job.polling and not view.running:  # ended since the fragment began polling: redraw the page
        job.polling = False
        st.rerun(scope="app")
    show_busy(slot)
    if view.running:
        left, right = st.columns([5, 1])
        left.progress(
            min(1.0, view.step / max(1, view.total)), text=f"{label}: step {view.step} of {view.total}"
        )
        right.button("Stop", key=f"balance_stop_{slot}", on_click=job.stop, icon=":material/stop:")
    elif view.stopped:
        st.info(f"Stopped at step {view.step} of {view.total}.", icon=":material/stop_circle:")
    if view.error:
        st.error(f"This run failed: {view.error}. The rest of the page still works.", icon=":material/error:")
    return not view.running
