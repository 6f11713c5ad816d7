"""The browser remembers its learner: a first-party cookie holding the private learner token.

Read: `st.context.cookies`, which Streamlit fills from the request that opened the session, so a
returning learner is known on the very first run of a page (no flash of "guest").
Write: a tiny `st.components.v2` component whose inline JavaScript runs in the page and sets
`document.cookie`; Streamlit has no Python API to set a cookie. The cookie is `SameSite=Lax`,
`Path=/`, `Secure` on https, and lives 400 days (the most Chromium keeps a cookie).

Why a cookie and not localStorage: the server can read a cookie before it draws anything; a value
in localStorage reaches Python only after the component has mounted and sent it back (one more
run, and a page that first draws the wrong learner). The token is never shown in the page's URL.
"""

from __future__ import annotations

import streamlit as st

from lessons.course.identity import parse_token

COOKIE = "moe_lab_learner"
MAX_AGE_S = 400 * 24 * 3600

# The token is passed as data (a JSON value), never pasted into the script's text.
_JS = """
export default function (component) {
  const { data } = component;
  if (!data || !data.name) return;
  const secure = window.location.protocol === "https:" ? "; Secure" : "";
  const tail = `; Path=/; SameSite=Lax${secure}`;
  if (data.value === null) {
    document.cookie = `${data.name}=; Max-Age=0${tail}`;
    return;
  }
  const wanted = `${data.name}=${data.value}`;
  if (!document.cookie.split("; ").includes(wanted)) {
    document.cookie = `${wanted}; Max-Age=${data.max_age}${tail}`;
  }
}
"""
_CSS = ":host { display: none; }"  # nothing to see
_BOX = "moe_lab_memory"
# ... nor the flex gap its (zero-height) wrapper would add at the top of the sidebar.
_HIDE_BOX = (f"<style>.st-key-{_BOX}, [data-testid=stLayoutWrapper]:has(> .st-key-{_BOX}) "
             "{ display: none; }</style>")
_writer = st.components.v2.component("moe_lab_browser_memory", js=_JS, css=_CSS)


def remembered_token() -> str | None:
    """The learner token this browser sent when the session opened, if it holds a valid one."""
    try:
        cookies = st.context.cookies
    except Exception:
        return None
    return parse_token(cookies.get(COOKIE)) if cookies else None


def remember(token: str | None) -> None:
    """Make this browser hold `token` (None: forget it). Call on every run where the token the
    browser sent differs; the script checks the cookie first, so a repeat costs nothing."""
    if token is not None and parse_token(token) is None:
        raise ValueError("not a learner token")
    with st.sidebar, st.container(key=_BOX):
        _writer(key="moe_lab_browser_memory", data={"name": COOKIE, "value": token, "max_age": MAX_AGE_S},
                height=0)
    st.html(_HIDE_BOX)  # style only: Streamlit puts it out of the layout
