"""Links into the middle of a lesson: `?section=<heading-anchor>` scrolls there once the page has drawn.

A plain `#anchor` does not survive: each lesson writes its widget values into the URL on its first
run, and that rewrite drops the fragment before the section has rendered. So course links (the
overview diagram's boxes) carry the anchor as a query parameter; the page frame reads it once,
removes it, and mounts a tiny `st.components.v2` script that waits for the heading Streamlit
generates for that section and scrolls it into view.
"""

from __future__ import annotations

import re

import streamlit as st

PARAM = "section"
_ANCHOR = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")  # the ids Streamlit gives headings

# The anchor arrives as data (JSON), never pasted into the script's text. Sections below the fold
# render late (content-visibility) and push content around, so the scroll is repeated for a while.
_JS = """
export default function (component) {
  const { data } = component;
  if (!data || !data.anchor) return;
  let found = 0, tries = 0;
  const timer = setInterval(() => {
    const el = document.getElementById(data.anchor);
    if (el) { el.scrollIntoView({ block: "start" }); found += 1; }
    if (found >= 8 || ++tries > 200) clearInterval(timer);
  }, 250);
}
"""
_scroller = st.components.v2.component("moe_lab_scroll_to_section", js=_JS, css=":host { display: none; }")


def section_link(page: str, anchor: str) -> str:
    """The URL path of a course page that opens scrolled to the heading `anchor`."""
    if not _ANCHOR.fullmatch(anchor):
        raise ValueError(f"not a heading anchor: {anchor!r}")
    return f"./{page}?{PARAM}={anchor}"


def scroll_to_requested_section() -> None:
    """Call once near the top of a page: honour and then drop `?section=` (bad values are ignored)."""
    anchor = st.query_params.get(PARAM)
    if anchor is None:
        return
    del st.query_params[PARAM]
    if _ANCHOR.fullmatch(anchor):
        with st.container(key="moe_lab_scroll"):
            _scroller(key="moe_lab_scroll_to_section", data={"anchor": anchor}, height=0)
