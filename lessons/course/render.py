"""Lesson text on the page: Markdown sections with their widgets, and escaping of learner text.

Learner-typed text is only ever drawn through `md_escape`: no page uses `unsafe_allow_html` with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache

import streamlit as st

from lessons.course.glossary import link_first_uses
from lessons.course.text import Block, load_sections

# --- escaping --------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$&=\"'])")
_ZWSP = "\u200b"


def md_escape(text: str) -> str:
    """Escape text for st.markdown so it shows literally (no bold, links, HTML, maths, icons).

    Backslash escapes cover CommonMark; Streamlit's `:material/name:` and emoji shortcodes are
    matched after escapes are resolved, so every colon is also followed by an invisible
    zero-width space, which no shortcode matches.
    """
    escaped = _MD_SPECIAL.sub(r"\\\1", text.replace("\n", " "))
    return escaped.replace("\\:", "\\:" + _ZWSP)


# --- sections ---------------------------------------------------------------------------------


def render_blocks(blocks: tuple[Block, ...] | list[Block]) -> None:
    for block in blocks:
        if block.kind == "latex":
            st.latex(block.text)
        else:
            st.markdown(block.text)


@lru_cache(maxsize=8)
def linked_sections(lesson: int) -> tuple[tuple[Block, ...], ...]:
    """Each section's blocks with the lesson's first use of every glossary term linked."""
    linked: set[str] = set()
    return tuple(tuple(link_first_uses(s.blocks, linked)) for s in load_sections(lesson))


def render_sections(lesson: int, widgets: Mapping[str, Callable[[], None]] | None = None,
                    deep_dives: Mapping[str, tuple[str, str, str]] | None = None) -> None:
    """Draw a lesson's Markdown sections in order, each widget right after its section's slug.

    Widgets whose section is missing are drawn after the last section, so nothing disappears
    while the text is being written. `deep_dives` maps a slug to (label, expander key, icon): that
    section and its widget are optional reading, collapsed, and built only once opened (a closed
    section costs no rerun: its widget is not on the page).
    """
    widgets = dict(widgets or {})
    sections = load_sections(lesson)
    if not sections:
        st.info("The text of this lesson is being written.")
    for section, blocks in zip(sections, linked_sections(lesson), strict=True):
        widget = widgets.pop(section.slug, None)
        if deep_dives and section.slug in deep_dives:
            label, key, icon = deep_dives[section.slug]
            dive = st.expander(label, icon=icon, key=key, on_change="rerun")
            if not dive.open:
                continue
            with dive:
                _section(blocks, widget)
        else:
            _section(blocks, widget)
    for widget in widgets.values():
        widget()


def _section(blocks: Sequence[Block], widget: Callable[[], None] | None) -> None:
    render_blocks(blocks)
    if widget is not None:
        widget()
