"""MoE Lab home page: what the course teaches, the five modules, progress and the learner.

Run with `streamlit run app.py`. The lessons are `pages/1_*.py` .. `pages/5_*.py` (Streamlit's
legacy multipage mode); the sidebar navigation is drawn by `lessons.course.sidebar.render_sidebar`
(`client.showSidebarNavigation = false` hides Streamlit's own).
"""

from __future__ import annotations

import streamlit as st

from lessons.course import sidebar as ui
from lessons.course.identity import DEFAULT_LEARNER
from lessons.course.page import setup_page
from lessons.course.render import md_escape
from lessons.course.text import LESSONS, NUM_LESSONS, lesson_info

INTRO = """
**MoE Lab** teaches Mixture-of-Experts (MoE) by letting you drive a small but real MoE
engine in your browser. Across five short lessons you will see why MoE models such as Mixtral,
DeepSeek-V3 and Qwen3 can store hundreds of billions of parameters yet spend only a fraction of
them on each token: how a router picks experts, how tokens are dispatched to them, why experts
collapse without load balancing, and what changes when a model spans many GPUs.

Each lesson ends with a short quiz; pass it (80 % or more) to complete the lesson.
"""
STATUS_TEXT = {"passed": "Completed", "tried": "Started", "new": "Not started"}
_FLASH = "home_flash"  # a message from a callback, shown once on the next run


def main() -> None:
    setup_page("Home")
    notices: list[str] = []
    learner = ui.resolve_learner(notices)
    view = ui.load_progress(learner)
    ui.note_visit(learner, 0)
    st.title("MoE Lab")
    st.caption("An interactive course on Mixture-of-Experts, driven by a live PyTorch MoE.")
    if flash := st.session_state.pop(_FLASH, None):
        notices.append(flash)
    ui.show_notices(notices, view)
    ui.render_sidebar(learner, view)
    st.markdown(INTRO)
    learner = _learner_box(learner)
    _progress_box(learner, view)
    _module_cards(learner, view)
    _reset_box(learner)


def _learner_box(learner: ui.Learner) -> ui.Learner:
    """Ask for a display name once (a friendly default if left empty); then show who is learning,
    the resume link for another device, and a way to start over on a shared computer."""
    with st.container(border=True):
        if learner.signed_in:
            st.markdown(f"Signed in as **{md_escape(learner.display)}**. Your progress is "
                        "kept under your account.")
            st.button("Sign out", on_click=st.logout, key="home_logout")
            return learner
        if "is_logged_in" in st.user:  # st.login is configured but nobody is signed in
            st.button("Sign in to keep your progress private", on_click=st.login, key="home_login")
        if learner.chosen:
            st.markdown(f"Learning as **{md_escape(learner.display)}**.")
            with st.expander("Change the name shown"):
                _name_form("home_switch", "Change")
        else:
            st.markdown("**What should we call you?** The name is only shown to you; this browser "
                        f"remembers your progress. Leave it empty to be shown as “{DEFAULT_LEARNER}”.")
            _name_form("home_name", "Start learning")
        st.caption("Your progress is kept under a private id that this browser remembers, not "
                   "under your name, so knowing your name opens nothing. Anyone who uses this "
                   "browser, or has your resume link, can see and change your progress.")
        with st.expander("Continue on another device"):
            st.markdown("Open this link on the other device (copy it with the button on its "
                        "right). Keep it to yourself: it opens your progress like a password.")
            st.code(ui.resume_link(learner), language=None, wrap_lines=True)
            st.button("Start over as a new learner in this browser", key="home_new_learner",
                      icon=":material/person_add:", on_click=_new_learner,
                      help="For a shared computer. Your progress so far stays saved: your resume "
                           "link above still opens it, so copy it first.")
    return learner


def _new_learner() -> None:
    ui.start_new_learner()
    st.session_state[_FLASH] = "This browser now keeps a new learner. Your resume link opens the old one."


def _name_form(key: str, button: str) -> None:
    with st.form(key, border=False):
        raw = st.text_input("Learner name", key=f"{key}_input", max_chars=200, placeholder=DEFAULT_LEARNER)
        if st.form_submit_button(button, type="primary"):
            notices: list[str] = []
            ui.choose_learner(raw, notices)
            st.session_state[_FLASH] = " ".join(notices) or None
            st.rerun()  # redraw every part of the page for the new name


def _progress_box(learner: ui.Learner, view: ui.ProgressView) -> None:
    st.header("Your progress", anchor=False)  # h2 under the h1 title (heading order)
    st.progress(view.completed / NUM_LESSONS)
    st.markdown(f"**{view.completed} / {NUM_LESSONS} completed**")
    if any(view.status(n).unsaved for n in range(1, NUM_LESSONS + 1)):
        st.caption("Some results of this session are not saved yet; MoE Lab keeps retrying.")
    if view.completed == NUM_LESSONS:
        st.success("You have completed every lesson. Revisit any of them below.",
                   icon=":material/celebration:")
    target = lesson_info(view.next_lesson())
    verb = "Continue where you left off" if view.last_visited or view.lessons else "Start the course"
    if st.button(f"{verb}: Lesson {target.number}, {target.title}", type="primary",
                 icon=":material/play_arrow:", key="home_continue"):
        st.switch_page(target.page, query_params=ui.link_params(learner))


def _module_cards(learner: ui.Learner, view: ui.ProgressView) -> None:
    st.header("The five modules", anchor=False)
    params = ui.link_params(learner)
    # One row of two cards at a time, so the page's order (what a screen reader reads, what a
    # phone stacks) is 1, 2, 3, 4, 5 as on screen; two columns filled down read 1, 3, 5, 2, 4.
    for row in range(0, len(LESSONS), 2):
        columns = st.columns(2)
        for column, info in zip(columns, LESSONS[row:row + 2], strict=False):
            _module_card(column, info, ui.status_of(view, info.number), view.status(info.number), params)


def _module_card(column, info, state: str, status, params: dict[str, str]) -> None:
    with column.container(border=True, height="stretch"):
        st.markdown(f"{info.icon} **Lesson {info.number}: {info.title}**")
        st.caption(info.summary)
        best = f" · best quiz score {status.best_score:.0%}" if status.best_score is not None else ""
        st.markdown(f"{ui.STATUS_ICONS[state]} {STATUS_TEXT[state]}{best}")
        st.page_link(info.page, label=f"Open Lesson {info.number}", icon=":material/arrow_forward:",
                     query_params=params)


def _reset_box(learner: ui.Learner) -> None:
    with st.expander("Reset my progress"):
        st.markdown("This erases every quiz result, prediction and visit of "
                    f"**{md_escape(learner.display)}**. It cannot be undone.")
        st.checkbox("Yes, I want to erase my progress", key="home_reset_confirm")
        st.button("Erase my progress", key="home_reset", icon=":material/delete:",
                  disabled=not st.session_state.get("home_reset_confirm"),
                  on_click=_do_reset, args=(learner,))


def _do_reset(learner: ui.Learner) -> None:
    # A callback runs before the next script run: the page below is drawn from the erased state.
    notice = ui.reset_progress(learner)
    st.session_state["home_reset_confirm"] = False
    st.session_state[_FLASH] = notice or "Your progress was erased. Start again whenever you like."


main()
