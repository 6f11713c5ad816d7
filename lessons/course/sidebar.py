"""Page chrome shared by every page: who the learner is, their progress, the sidebar, links.

Identity (contract 5 of shared/DESIGN.md) is `lessons.course.learner`'s: the signed-in account,
else a private id this browser remembers; the name a learner types is only shown. Its public names
are re-exported here, so pages keep calling `ui.resolve_learner` and friends.

Progress never blocks a lesson: any `ProgressUnavailable` becomes a short notice, quiz results
of this session are kept in `st.session_state` (shown as completed, marked "not saved") and
retried on the next save. Learner-typed text is only ever drawn through `md_escape`: no page
uses `unsafe_allow_html` with it.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

import streamlit as st

from lessons.course.learner import (  # noqa: F401 - re-exported for the pages
    Learner,
    choose_learner,
    current_learner,
    forget_claims,
    get_store,
    link_params,
    pending_claims,
    resolve_learner,
    resume_link,
    start_new_learner,
)
from lessons.course.progress import ProgressStore, ProgressUnavailable
from lessons.course.render import md_escape
from lessons.course.text import (
    GLOSSARY_PAGE,
    HOME_PAGE,
    LESSONS,
    NUM_LESSONS,
)

_log = logging.getLogger(__name__)

_RESULTS = "shell_results"  # {(learner key, lesson): (best score, passed)} of this session
_PENDING = "shell_pending"  # {(learner key, lesson): best score} not yet saved
_VISITED = "shell_last_page"  # page last marked visited, so reruns don't rewrite it


@dataclass
class LessonStatus:
    best_score: float | None = None
    attempts: int = 0
    passed: bool = False
    unsaved: bool = False  # passed in this session but the store could not save it yet


@dataclass
class ProgressView:
    """Everything a page shows about one learner's progress, gathered once per run."""

    lessons: dict[int, LessonStatus] = field(default_factory=dict)
    last_visited: int | None = None
    notice: str | None = None  # set when the store could not be read: shown as a warning

    @property
    def completed(self) -> int:
        return sum(1 for s in self.lessons.values() if s.passed)

    def status(self, lesson: int) -> LessonStatus:
        return self.lessons.get(lesson, LessonStatus())

    def apply(self, lesson: int, score: float, passed: bool, unsaved: bool = False) -> None:
        """Fold in a quiz attempt made on this run (so the sidebar drawn after it is current)."""
        status = self.lessons.setdefault(lesson, LessonStatus())
        status.attempts += 1
        status.best_score = max(status.best_score or 0.0, score)
        if passed and not status.passed:
            status.passed, status.unsaved = True, unsaved

    def next_lesson(self) -> int:
        """Where "continue" goes: the last lesson visited unless it is completed, then the next
        lesson not completed after it (wrapping round); with no visit, the first not completed."""
        start = self.last_visited if self.last_visited in range(1, NUM_LESSONS + 1) else None
        if start is not None and not self.status(start).passed:
            return start
        order = [(((start or 0) + i) % NUM_LESSONS) + 1 for i in range(NUM_LESSONS)]
        return next((n for n in order if not self.status(n).passed), start or 1)


# --- progress --------------------------------------------------------------------------------


def _session_dict(key: str) -> dict:
    return st.session_state.setdefault(key, {})


def load_progress(learner: Learner) -> ProgressView:
    """The learner's progress: the store's, merged with this session's results; never raises."""
    view = ProgressView()
    try:
        store = get_store()
        _flush_pending(store)
        for lesson, rec in store.progress(learner.key).items():
            view.lessons[lesson] = LessonStatus(rec.best_score, rec.attempts, rec.passed)
        view.last_visited = store.last_visited(learner.key)
        for name in pending_claims(learner):  # an old link's progress not moved yet: shown all the same
            for lesson, rec in store.progress(name).items():
                status = view.lessons.setdefault(lesson, LessonStatus())
                status.attempts += rec.attempts
                status.best_score = max(status.best_score or 0.0, rec.best_score)
                status.passed = status.passed or rec.passed
            view.last_visited = view.last_visited or store.last_visited(name)
    except ProgressUnavailable as e:
        view.notice = str(e)
    pending = _session_dict(_PENDING)
    for (key, lesson), (best, passed) in _session_dict(_RESULTS).items():
        if key != learner.key:
            continue
        status = view.lessons.setdefault(lesson, LessonStatus(attempts=1))
        if passed and not status.passed:  # the store has not got this pass (yet)
            status.passed, status.unsaved = True, (key, lesson) in pending
        status.best_score = max(status.best_score or 0.0, best)
    return view


def _flush_pending(store: ProgressStore) -> None:
    pending = _session_dict(_PENDING)
    for (key, lesson), score in list(pending.items()):
        store.record_quiz(key, lesson, score)  # raises ProgressUnavailable: keep the rest pending
        del pending[(key, lesson)]


def record_result(learner: Learner, lesson: int, score: float, passed: bool) -> str | None:
    """Remember a quiz attempt; returns a notice when it could not be saved (kept for a retry)."""
    results = _session_dict(_RESULTS)
    best, was_passed = results.get((learner.key, lesson), (0.0, False))
    results[(learner.key, lesson)] = (max(best, score), was_passed or passed)
    try:
        get_store().record_quiz(learner.key, lesson, score)
    except ProgressUnavailable as e:
        pending = _session_dict(_PENDING)
        pending[(learner.key, lesson)] = max(score, pending.get((learner.key, lesson), 0.0))
        return f"{e} MoE Lab will try to save this result again on your next page."
    return None


def note_visit(learner: Learner, page: int) -> None:
    """Mark lesson `page` visited once per arrival (0 = home); failures only cost the bookmark."""
    if st.session_state.get(_VISITED) == page:
        return
    st.session_state[_VISITED] = page
    if page < 1:
        return
    with contextlib.suppress(ProgressUnavailable):  # load_progress already told the learner
        get_store().mark_visited(learner.key, page)


def reset_progress(learner: Learner) -> str | None:
    """Erase the learner's stored and session progress; returns a notice on failure."""
    for key in (_RESULTS, _PENDING, "predict_known", "predict_pending"):  # the last two: predict.py
        for item in [k for k in _session_dict(key) if k[0] == learner.key]:
            del _session_dict(key)[item]
    try:
        for key in [learner.key, *pending_claims(learner)]:  # with an old name's, shown as theirs
            get_store().reset(key)
    except ProgressUnavailable as e:
        return str(e)
    forget_claims(learner)
    return None


# --- drawing ---------------------------------------------------------------------------------

STATUS_ICONS = {"passed": ":material/check_circle:", "tried": ":material/pending:",
                "new": ":material/radio_button_unchecked:"}


def status_of(view: ProgressView, lesson: int) -> str:
    s = view.status(lesson)
    return "passed" if s.passed else "tried" if s.attempts or s.best_score else "new"


SIDEBAR = "sidebar"  # the sidebar's fragment key: a quiz result reruns it by this name


def render_sidebar(learner: Learner, view: ProgressView) -> None:
    """Progress bar, "k / 5 completed", links to every lesson with its status, glossary.

    Drawn first, so the navigation is there while a heavy lesson body still computes. It is a
    keyed fragment: a quiz result redraws it with `st.rerun([..., SIDEBAR])` from the quiz's
    callback, without rerunning the lesson. (A fragment writing into a sidebar slot drawn
    outside it broke Streamlit's frontend now and then on page changes: "Cannot set a node at a
    delta path".) The fragment reruns with this run's `view`, which a result updates in place.
    """
    with st.sidebar:
        st.fragment(_sidebar_body, key=SIDEBAR)(learner, view)


def _sidebar_body(learner: Learner, view: ProgressView) -> None:
    params = link_params(learner)
    st.page_link(HOME_PAGE, label="MoE Lab home", icon=":material/home:", query_params=params)
    st.progress(view.completed / NUM_LESSONS)
    st.markdown(f"**Your progress: {view.completed} / {NUM_LESSONS} completed**")
    for info in LESSONS:
        state = status_of(view, info.number)
        label = f"{info.number}. {info.title}"  # Streamlit highlights the current page itself
        st.page_link(info.page, label=label, icon=STATUS_ICONS[state], query_params=params,
                     help={"passed": "Completed", "tried": "Quiz tried, not passed yet",
                           "new": "Not started"}[state])
    st.divider()
    st.page_link(GLOSSARY_PAGE, label="Glossary and references", icon=":material/menu_book:",
                 query_params=params)
    who = "Signed in as" if learner.signed_in else "Learning as"
    st.caption(f"{who} **{md_escape(learner.display)}**")


def show_notices(notices: list[str], view: ProgressView | None = None) -> None:
    for text in dict.fromkeys(notices):  # each once, in order
        if view is None or text != view.notice:  # the warning below says it
            st.info(text, icon=":material/info:")
    if view is not None and view.notice:
        st.warning(view.notice, icon=":material/cloud_off:")
