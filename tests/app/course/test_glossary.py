"""Glossary links from first use: where a link may go, and that every link lands on a definition."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from lessons.course.glossary import (
    glossary_terms,
    glossary_with_headings,
    heading_anchor,
    link_first_uses,
)
from lessons.course.render import linked_sections
from lessons.course.text import LESSONS, Block, load_page_text

LINK = re.compile(r"\[([^\]]*)\]\(\./Glossary_and_References\?section=([a-z0-9-]+)\)")


def test_only_the_first_plain_prose_use_is_linked() -> None:
    text = ("`router` and $router$ and **router** and [router](x) first, then the router "
            "picks, and the router again.")  # fmt: skip
    (block,) = link_first_uses([Block("markdown", text)], set())
    links = LINK.findall(block.text)
    assert links == [("router", "router-gate")]
    kept = "`router` and $router$ and **router** and [router](x) first, then the [router]"
    assert block.text.startswith(kept)
    assert block.text.endswith("and the router again.")


def test_a_term_linked_earlier_in_the_lesson_is_not_linked_again() -> None:
    linked: set[str] = set()
    link_first_uses([Block("markdown", "The router decides.")], linked)
    (block,) = link_first_uses([Block("markdown", "The router again.")], linked)
    assert "](" not in block.text and "Router (gate)" in linked


def test_headings_tables_and_maths_blocks_stay_as_written() -> None:
    blocks = [Block("markdown", "## The router\n\n| router | x |\n|---|---|"),
              Block("latex", r"\text{router}")]
    assert [b.text for b in link_first_uses(blocks, set())] == [b.text for b in blocks]


def test_every_link_in_every_lesson_lands_on_a_glossary_heading() -> None:
    page = glossary_with_headings(load_page_text("glossary"))
    headings = {heading_anchor(h) for h in re.findall(r"^### (.+)$", page, re.MULTILINE)}
    assert len(headings) == len(glossary_terms()) >= 40
    for info in LESSONS:
        anchors = [a for s in linked_sections(info.number) for b in s for _, a in LINK.findall(b.text)]
        assert anchors, f"lesson {info.number} links no glossary term"
        assert set(anchors) <= headings
        assert len(anchors) == len(set(anchors)), "a term linked twice in one lesson"


def test_pages_show_the_links_and_the_glossary_headings(open_page) -> None:
    at: AppTest = open_page(LESSONS[0].page)
    assert not at.exception
    assert any(LINK.search(m.value) for m in at.markdown)
    at.switch_page("pages/6_Glossary_and_References.py").run()
    assert not at.exception
    assert any("### Router (gate)" in m.value for m in at.markdown), [m.value[:80] for m in at.markdown][:5]
