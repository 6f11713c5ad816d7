"""Glossary links: the first use of a glossary term in each lesson links to its definition.

The glossary (`lessons/content/glossary.md`) defines each term in a paragraph that starts with
`**Term**:`. On the glossary page each of those becomes a `### Term` heading, so Streamlit gives it
an anchor; in a lesson, the first plain-prose occurrence of each term becomes a link to
`Glossary_and_References?section=<anchor>` (`lessons.course.scroll` scrolls there). Code spans,
maths, existing links, bold text and headings are left alone, so a link never breaks Markdown.
Pure text processing (no Streamlit), cached per lesson.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from lessons.course.scroll import section_link
from lessons.course.text import Block, load_page_text

GLOSSARY_PAGE = "Glossary_and_References"
_DEFINITION = re.compile(r"^\*\*(?P<term>[^*\n]+)\*\*:\s*", re.MULTILINE)
# Spans a link must not be put inside: code, maths, links, bold, headings, HTML tags.
# Table rows too: a link would widen their columns.
_PROTECTED = re.compile(r"`[^`]*`|\$\$[\s\S]*?\$\$|\$[^$\n]*\$|\[[^\]]*\]\([^)]*\)|\*\*[^*]*\*\*"
                        r"|^#[^\n]*|<[^>]*>|^\|[^\n]*", re.MULTILINE)  # fmt: skip


@dataclass(frozen=True)
class Term:
    name: str  # as the glossary writes it, e.g. "Capacity factor (CF)"
    anchor: str  # the id Streamlit gives the glossary heading of that name
    pattern: re.Pattern  # what counts as a use of the term in lesson prose


def heading_anchor(title: str) -> str:
    """The id Streamlit gives a Markdown heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).strip().replace(" ", "-")


def _pattern(name: str) -> re.Pattern:
    base = re.sub(r"\s*\([^)]*\)", "", name).strip()  # "Capacity factor (CF)" -> "Capacity factor"
    words = r"\s+".join(re.escape(w) for w in base.split())
    return re.compile(rf"(?<![\w-])({words})(s|es)?(?![\w-])", re.IGNORECASE)


@lru_cache(maxsize=1)
def glossary_terms() -> tuple[Term, ...]:
    """Every term the glossary defines, longest first (so 'dense model' wins over 'model')."""
    text = load_page_text("glossary") or ""
    names = [m.group("term").strip() for m in _DEFINITION.finditer(text)]
    terms = [Term(n, heading_anchor(n), _pattern(n)) for n in names]
    return tuple(sorted(terms, key=lambda t: -len(t.name)))


def glossary_with_headings(text: str) -> str:
    """The glossary page's Markdown with each `**Term**:` paragraph opened by a `### Term` heading."""
    return _DEFINITION.sub(lambda m: f"### {m.group('term').strip()}\n\n", text)


def _link_in_prose(text: str, term: Term) -> tuple[str, bool]:
    """Link the first unprotected use of `term` in `text`; (new text, whether it linked)."""
    pos = 0
    for protected in [*_PROTECTED.finditer(text), None]:
        end = protected.start() if protected else len(text)
        match = term.pattern.search(text, pos, end)
        if match:
            link = f"[{match.group(0)}]({section_link(GLOSSARY_PAGE, term.anchor)})"
            return text[: match.start()] + link + text[match.end():], True
        if protected is None:
            break
        pos = protected.end()
    return text, False


def link_first_uses(blocks: list[Block] | tuple[Block, ...], linked: set[str]) -> list[Block]:
    """`blocks` with the first use of each glossary term not in `linked` made a link (updates it)."""
    out = []
    for block in blocks:
        text = block.text
        if block.kind != "latex":
            for term in glossary_terms():
                if term.name not in linked:
                    text, done = _link_in_prose(text, term)
                    if done:
                        linked.add(term.name)
        out.append(Block(block.kind, text))
    return out
