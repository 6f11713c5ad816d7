"""Predict, then try (issue 17): a one-question prediction before an experiment, and its reveal.

A lesson calls `predict(...)` above an experiment and `reveal(...)` below it:

    guess = predict(4, "no-balance", "Without balancing, what will the load do?", OPTIONS)
    run = ...the experiment...
    if run is not None:  # reveal only once the experiment has an outcome to compare with
        reveal(4, "no-balance", outcome=OPTIONS[1 if run.collapsed else 0], explanation="...")

Predictions are not graded. They are kept with the learner's progress (`ProgressStore.predictions`,
one per learner, lesson and key, the first one locked in wins), so a reload or another session of
the same learner shows the same prediction. When the store can't be used, the prediction is kept in
this session and saved once the store is back, as quiz results are (`lessons.course.sidebar`).

Widget keys: `predict_<lesson>_<key>` (the form), `..._choice` (the radio).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

import streamlit as st

from lessons.course import learner as ui
from lessons.course.progress import ProgressUnavailable
from lessons.course.render import md_escape

_log = logging.getLogger(__name__)

_KNOWN = "predict_known"  # {(learner key, lesson): {key: answer}} read from the store or made here
_PENDING = "predict_pending"  # {(learner key, lesson, key): answer} not saved yet
_NOTICE = "predict_notice"  # {(lesson, key): notice} from the lock-in callback, shown once
LOCK_IN = "Lock in my prediction"


def predict(lesson: int, key: str, question: str, options: Sequence[str]) -> str | None:
    """Draw the prediction for `key` of `lesson`; returns the locked-in answer, or None until the
    learner has locked one in. `question` and `options` are the course's Markdown (not escaped)."""
    options = list(options)
    answer = _prediction(lesson, key)
    with st.container(border=True, key=f"predict_{lesson}_{key}_box"):
        st.markdown(f":material/psychology_alt: **Predict first.** {question}")
        if answer is not None:
            st.markdown(f"You predicted: **{_shown(answer, options)}**")
            st.caption("Now try it below, and see whether your prediction holds.")
        else:
            with st.form(f"predict_{lesson}_{key}", border=False):
                st.radio("Your prediction", options, index=None, key=f"predict_{lesson}_{key}_choice",
                         label_visibility="collapsed")
                st.form_submit_button(LOCK_IN, on_click=_lock_in, args=(lesson, key, options))
        notice = st.session_state.get(_NOTICE, {}).pop((lesson, key), None)
        if notice:
            st.caption(notice)
    return answer


def reveal(lesson: int, key: str, outcome: str, explanation: str) -> None:
    """After the experiment: say whether the stored prediction held (`outcome` is the option that
    happened), then `explanation`. Draws nothing when the learner made no prediction."""
    answer = _prediction(lesson, key)
    if answer is None:
        return
    if answer == outcome:
        st.success(f"Your prediction held: **{outcome}**", icon=":material/check_circle:")
    else:
        st.info(f"You predicted **{md_escape(answer)}**; what happened: **{outcome}**",
                icon=":material/lightbulb:")
    st.markdown(explanation)


# --- storage: the store first, this session when the store can't be used -------------------------


def _learner_key() -> str:
    return (ui.current_learner() or ui.resolve_learner([])).key


def _prediction(lesson: int, key: str) -> str | None:
    return _known(_learner_key(), lesson).get(key)


def _known(learner: str, lesson: int) -> dict[str, str]:
    """This learner's predictions in `lesson`, read from the store once per session (and from
    this session's unsaved ones while the store can't be read)."""
    if st.session_state.get(_PENDING):
        with contextlib.suppress(ProgressUnavailable):  # still down: they stay pending
            _flush_pending()
    known = st.session_state.setdefault(_KNOWN, {})
    if (learner, lesson) not in known:
        try:
            known[(learner, lesson)] = ui.get_store().predictions(learner, lesson)
        except ProgressUnavailable:
            return {k: a for (who, n, k), a in st.session_state.get(_PENDING, {}).items()
                    if (who, n) == (learner, lesson)}  # the store is read again next run
    return known[(learner, lesson)]


def _lock_in(lesson: int, key: str, options: list[str]) -> None:
    """Form callback: keep the chosen option (it runs before the script, so the page below is
    drawn with the prediction in place)."""
    choice = st.session_state.get(f"predict_{lesson}_{key}_choice")
    notices = st.session_state.setdefault(_NOTICE, {})
    if choice not in options:
        notices[(lesson, key)] = "Pick one of the answers first, then lock it in."
        return
    learner = _learner_key()
    try:
        choice = ui.get_store().record_prediction(learner, lesson, key, choice)
    except ProgressUnavailable as e:
        st.session_state.setdefault(_PENDING, {})[(learner, lesson, key)] = choice
        notices[(lesson, key)] = f"{e} MoE Lab will try to save your prediction again."
    cached = st.session_state.setdefault(_KNOWN, {}).get((learner, lesson))
    if cached is not None:
        cached[key] = choice


def _flush_pending() -> None:
    pending = st.session_state.get(_PENDING, {})
    for (learner, lesson, key), answer in list(pending.items()):
        ui.get_store().record_prediction(learner, lesson, key, answer)  # raises: keep the rest
        del pending[(learner, lesson, key)]


def _shown(answer: str, options: list[str]) -> str:
    """An option is the course's own Markdown; anything else (an option since reworded) is text."""
    return answer if answer in options else md_escape(answer)
