"""One lesson page, the same frame for all five: live model, goals, body, quiz, previous/next links.

`pages/N_Title.py` calls `render_lesson(N)`. The lesson's folder (`lessons.<module>`, e.g.
lesson2_router) owns what is drawn between the title and the quiz:

- `render_hero()`, optional: the live model first — one chart and one control that fit on the
  first screen (1400x900) above any reading, so a learner acts before they read;
- `render_body()`: the sections and their panels, the text explaining what the learner just saw.

A part that fails is reported in one line, so the quiz and the navigation still work.
"""

from __future__ import annotations

import importlib
import logging

import streamlit as st

from lessons.course import sidebar as ui
from lessons.course.heap import freeze_startup_heap
from lessons.course.quiz import QuizResult, render_quiz
from lessons.course.render import render_blocks
from lessons.course.text import (
    HOME_PAGE,
    NUM_LESSONS,
    lesson_info,
    load_goals,
    load_page_text,
    split_math,
)

_log = logging.getLogger(__name__)
BODY_FAILED = "This part of the lesson could not be shown"


# Long lesson pages: let the browser skip style, layout and paint of the parts below the fold
# until they scroll near (`content-visibility: auto`; `contain-intrinsic-size: auto` remembers
# each part's real height once drawn, so the scroll bar does not jump).
_PAGE_CSS = """<style>
[data-testid="stMainBlockContainer"] > [data-testid="stVerticalBlock"] > div {
  content-visibility: auto; contain-intrinsic-size: auto 400px;
}
</style>"""


def setup_page(title: str) -> None:
    """Page config shared by every page (must run before anything is drawn)."""
    # An emoji icon: a :material: one makes the browser fetch it from Google Fonts on every view.
    st.set_page_config(page_title=f"{title} · MoE Lab", page_icon="🎓",
                       layout="centered", initial_sidebar_state="expanded")
    st.html(_PAGE_CSS)


def render_lesson(number: int) -> None:
    """Draw lesson `number` (1..5) with the shared sidebar and progress."""
    info = lesson_info(number)
    setup_page(info.title)
    notices: list[str] = []
    learner = ui.resolve_learner(notices)
    view = ui.load_progress(learner)
    ui.note_visit(learner, number)
    ui.show_notices(notices, view)
    ui.render_sidebar(learner, view)

    st.caption(f"Lesson {number} of {NUM_LESSONS}")
    st.title(info.title)
    _render_part(info.module, "render_hero")
    _render_goals(number)
    _render_part(info.module, "render_body")
    st.divider()

    def on_result(result: QuizResult) -> str | None:
        notice = ui.record_result(learner, number, result.score, result.passed)
        view.apply(number, result.score, result.passed, unsaved=notice is not None)
        return notice

    render_quiz(number, on_result, rerun_too=[ui.SIDEBAR])  # "k / 5 completed" counts it at once
    st.divider()
    _render_prev_next(number, learner)
    freeze_startup_heap()  # after the first run: imports and models in place (see lessons/course/heap.py)


def _render_goals(number: int) -> None:
    goals = load_goals(number)
    with st.container(border=True):
        st.markdown("**In this lesson you will learn to**")
        st.markdown(goals if goals else "_The learning goals are being written._")


def _render_part(module_name: str, part: str) -> None:
    try:
        module = importlib.import_module(f"lessons.{module_name}")
        render = getattr(module, part, None)
        if render is None and part == "render_hero":
            return  # a lesson without a hero starts with its goals
        render()
    except st.errors.StreamlitAPIException:
        raise  # a misuse of Streamlit is a bug to fix, not something to hide
    except Exception:
        # Not a traceback for learners: the log has it; the page keeps its quiz and links.
        _log.exception("lesson %s.%s failed", module_name, part)
        st.error(f"{BODY_FAILED}. The rest of the page still works.", icon=":material/error:")


def _render_prev_next(number: int, learner: ui.Learner) -> None:
    params = ui.link_params(learner)
    left, right = st.columns(2)
    with left:
        if number > 1:
            prev = lesson_info(number - 1)
            st.page_link(prev.page, label=f"Previous: {prev.title}", icon=":material/arrow_back:",
                         query_params=params)
        else:
            st.page_link(HOME_PAGE, label="Course home", icon=":material/home:", query_params=params)
    with right.container(horizontal_alignment="right"):
        if number < NUM_LESSONS:
            nxt = lesson_info(number + 1)
            st.page_link(nxt.page, label=f"Next: {nxt.title}", icon=":material/arrow_forward:",
                         query_params=params)
        else:
            st.page_link(HOME_PAGE, label="Back to the course map", icon=":material/home:",
                         query_params=params)


def render_reference_page() -> None:
    """The glossary and the references, one page reachable from every sidebar."""
    setup_page("Glossary and references")
    notices: list[str] = []
    learner = ui.resolve_learner(notices)
    view = ui.load_progress(learner)
    ui.note_visit(learner, 0)
    ui.show_notices(notices, view)
    ui.render_sidebar(learner, view)
    st.title("Glossary and references")
    glossary, references = st.tabs(["Glossary", "References"])
    for tab, name in ((glossary, "glossary"), (references, "references")):
        with tab:
            text = load_page_text(name)
            render_blocks(split_math(text) if text else [])
            if not text:
                st.info(f"The {name} is being written.")
