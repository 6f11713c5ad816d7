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
import os

import streamlit as st

from lessons.course import sidebar as ui
from lessons.course.glossary import glossary_with_headings
from lessons.course.heap import freeze_startup_heap_soon
from lessons.course.prefetch import prefetch_script
from lessons.course.quiz import QUIZ_ANCHOR, QuizResult, render_quiz
from lessons.course.render import render_blocks
from lessons.course.scroll import scroll_to_requested_section
from lessons.course.text import (
    HOME_PAGE,
    NUM_LESSONS,
    lesson_info,
    load_goals,
    load_page_text,
    split_math,
)
from lessons.course.warm_up import warm_up_in_background

_log = logging.getLogger(__name__)
BODY_FAILED = "This part of the lesson could not be shown"


# Long lesson pages: let the browser skip style, layout and paint of the parts below the fold
# until they scroll near (`content-visibility: auto`; `contain-intrinsic-size: auto` remembers
# each part's real height once drawn, so the scroll bar does not jump).
_LAZY_CSS = """
[data-testid="stMainBlockContainer"] > [data-testid="stVerticalBlock"] > div {
  content-visibility: auto; contain-intrinsic-size: auto 400px;
}
"""

# Accessibility and phones (issue 18), for every page at once. Colour contrast is measured
# against white and the sidebar's #F2F5F9 (WCAG 2.2 AA asks 4.5:1 for text).
# NOTE: no angle brackets in comments: Streamlit's HTML sanitiser drops a style holding a "tag".
_A11Y_CSS = """
/* Captions: Streamlit draws them at 60 % opacity, #767c83 = 4.2:1 on white and 3.9:1 on the
   sidebar. Opaque #5A6270 is 6.2:1 and 5.6:1. */
[data-testid="stCaptionContainer"] { opacity: 1 !important; color: #5A6270 !important; }

/* Visible focus on every control reached by keyboard: 3 px Okabe-Ito blue (5.2:1 on white). */
a:focus-visible, button:focus-visible, summary:focus-visible, [role="tab"]:focus-visible,
[tabindex]:focus-visible, input:focus-visible, textarea:focus-visible {
  outline: 3px solid #0072B2 !important; outline-offset: 2px;
}
/* A slider's range input is visually hidden inside its thumb: ring the thumb instead;
   radios and checkboxes hide their input inside the label: ring the label. */
[data-testid="stSlider"] div:has(> div > input:focus-visible),
[data-testid="stRadio"] label:has(input:focus-visible),
[data-testid="stCheckbox"] label:has(input:focus-visible) {
  outline: 3px solid #0072B2; outline-offset: 3px; border-radius: 4px;
}

/* Metrics: wrap a long value ("25.2 GFLOPs", "127, top-8") instead of cutting it with "...". */
[data-testid="stMetricValue"] { font-size: 1.75rem; }
[data-testid="stMetricValue"] > div, [data-testid="stMetricValue"] p,
[data-testid="stMetricLabel"] > div, [data-testid="stMetricLabel"] p {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  overflow-wrap: break-word;
}
@media (max-width: 640px) { [data-testid="stMetricValue"] { font-size: 1.5rem; } }

/* No Plotly toolbar on any chart, however it was drawn (show_chart also turns it off): its
   buttons were Tab stops (56 before Lesson 2's quiz) and covered chart titles on phones. */
[data-testid="stPlotlyChart"] .modebar-container { display: none !important; }

/* Plotly's tick labels and axis titles come in the chart theme's grey (#808495, 3.7:1): the
   text colour's muted shade instead (7.2:1), whatever built the figure (figures.py does too). */
[data-testid="stPlotlyChart"] g[class$="tick"] > text,
[data-testid="stPlotlyChart"] g[class^="g-"][class$="title"] text { fill: #4F5864 !important; }

/* Phones: a display formula wider than the screen scrolls inside its own box, never the page. */
.katex-display { overflow-x: auto; overflow-y: hidden; max-width: 100%; }
/* ...and shows that it does: a soft shadow on the side with more formula (the white covers move
   with the content, the shadows stay at the box's edges). */
[data-moe-scroll] {
  background:
    linear-gradient(to right, #fff 30%, rgba(255, 255, 255, 0)) left center / 32px 100% no-repeat local,
    linear-gradient(to left, #fff 30%, rgba(255, 255, 255, 0)) right center / 32px 100% no-repeat local,
    radial-gradient(farthest-side at 0 50%, rgba(27, 36, 48, .22), transparent)
      left center / 12px 100% no-repeat scroll,
    radial-gradient(farthest-side at 100% 50%, rgba(27, 36, 48, .22), transparent)
      right center / 12px 100% no-repeat scroll;
}

/* A collapsed sidebar is only slid out of view: its links stayed in the Tab order, 7 invisible
   stops on a phone. Hidden, they leave it; the open button brings them back. */
[data-testid="stSidebar"][data-collapsed="true"] { visibility: hidden; }

/* "Skip to the quiz": hidden until a keyboard learner tabs onto it (WCAG 2.4.1, bypass blocks). */
a.moe-skip { position: absolute; left: -10000px; }
a.moe-skip:focus { position: static; }

/* The script below draws nothing: take its empty block out of the layout. */
[data-testid="stElementContainer"]:has(.moe-a11y) { display: none; }
"""

# Heading anchors ("Link to heading", one per section) stay for the mouse but leave the Tab order:
# on Lesson 1 they were 12 of the 77 Tab presses between the top of the page and the quiz.
# Scrollable boxes (a formula wider than a phone, a long code line, a wide table) must be
# reachable by keyboard, or a keyboard learner cannot scroll them (axe: scrollable-region-
# focusable). Which boxes overflow depends on the window, so the page marks them as they appear
# and as the window changes: tabindex 0 and a label on those that overflow, removed on those that
# no longer do. One observer per browser tab (a page switch keeps the document).
_A11Y_JS = """
<span class="moe-a11y" hidden></span>
<script>
(() => {
  if (window.__moeA11y) return;
  window.__moeA11y = true;
  const BOXES = '.katex-display, [data-testid="stCode"] pre, [data-testid="stMarkdownContainer"] table, '
    + '[data-testid="stTable"] > div';  // st.table's scroll box
  const mark = () => {
    for (const a of document.querySelectorAll('[data-testid="stHeaderActionElements"] a:not([tabindex])')) {
      a.setAttribute("tabindex", "-1");
    }
    for (const box of document.querySelectorAll(BOXES)) {
      const overflows = box.scrollWidth > box.clientWidth + 1;
      if (overflows && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "group");  // not "region": a landmark per formula is noise
        const table = box.matches("table") || box.parentElement.matches('[data-testid="stTable"]');
        box.setAttribute("aria-label", table ? "Table, scrolls sideways"
          : box.matches("pre") ? "Code, scrolls sideways" : "Formula, scrolls sideways");
        box.dataset.moeScroll = "1";
      } else if (!overflows && box.dataset.moeScroll) {
        for (const a of ["tabindex", "role", "aria-label", "data-moe-scroll"]) box.removeAttribute(a);
      }
    }
  };
  let queued = false;
  const later = () => { if (!queued) { queued = true; setTimeout(() => { queued = false; mark(); }, 150); } };
  new MutationObserver(later).observe(document.body, {childList: true, subtree: true});
  window.addEventListener("resize", later);
  later();
})();
</script>
"""


def setup_page(title: str) -> None:
    """Page config shared by every page (must run before anything is drawn)."""
    # An emoji icon: a :material: one makes the browser fetch it from Google Fonts on every view.
    # "auto": the sidebar starts open on a wide window and closed on a phone (it covered 77 % of
    # a 390 px screen on first load).
    st.set_page_config(page_title=f"{title} · MoE Lab", page_icon="🎓",
                       layout="centered", initial_sidebar_state="auto")
    st.html(f"<style>{_LAZY_CSS}{_A11Y_CSS}</style>")
    # Our own constant scripts, no learner text: accessibility marks, and the lessons' browser code
    # loaded while the learner reads (lessons/course/prefetch.py).
    st.html(_A11Y_JS + prefetch_script(), unsafe_allow_javascript=True)
    if os.environ.get("MOE_LAB_WARM_UP", "1") != "0":  # the test suite's AppTests turn it off
        warm_up_in_background()  # once per process: every lesson's default view, in the background


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

    # First in the page's Tab order after the sidebar: a keyboard learner can go straight to the quiz.
    st.markdown(f'<a class="moe-skip" href="#{QUIZ_ANCHOR}">Skip to the quiz</a>', unsafe_allow_html=True)
    st.caption(f"Lesson {number} of {NUM_LESSONS}")
    st.title(info.title)
    scroll_to_requested_section()  # a course link into one of this lesson's sections
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
    freeze_startup_heap_soon()  # after the first run: imports and models in place (lessons/course/heap.py)


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
            if text and name == "glossary":
                text = glossary_with_headings(text)  # one anchor per term, for the lessons' links
            render_blocks(split_math(text) if text else [])
            if not text:
                st.info(f"The {name} is being written.")
