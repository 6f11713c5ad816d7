"""The overview diagram of one MoE layer: pure SVG builder checks, and `?section=` links."""

from __future__ import annotations

import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lessons.course.scroll import section_link
from lessons.course.text import LESSONS, load_sections
from lessons.lesson1_what_is_moe.diagram import LINKS, block_svg, layer_svg

PAGE_OF_LESSON = {info.page.split("_", 1)[1].removesuffix(".py"): info.number for info in LESSONS}


def heading_anchor(title: str) -> str:
    """The id Streamlit gives a Markdown heading (lower case, punctuation dropped, spaces to '-')."""
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).strip().replace(" ", "-")


@pytest.mark.parametrize("part", sorted(LINKS))
def test_every_part_links_to_an_existing_section(part: str) -> None:
    page, anchor = LINKS[part]
    lesson = PAGE_OF_LESSON[page]
    titles = [s.blocks[0].text.splitlines()[0].lstrip("# ") for s in load_sections(lesson)]
    assert anchor in {heading_anchor(t) for t in titles}, (part, titles)


def test_layer_svg_draws_the_routing_it_is_given_and_escapes_the_token() -> None:
    probs = np.array([0.05, 0.5, 0.05, 0.3, 0.02, 0.03, 0.03, 0.02])
    svg = layer_svg("<b>x</b>", probs, [1, 3], [0.625, 0.375], layer=2)
    assert "<b>x" not in svg and "&lt;b&gt;x" in svg
    assert "g = 0.62" in svg and "g = 0.38" in svg  # 0.625 rounds half to even
    assert svg.count("(idle)") == 6 and "layer 3" in svg
    for part in ("router", "topk", "experts", "combine", "shared"):
        assert section_link(*LINKS[part]) in svg
    assert section_link(*LINKS["token"]) in block_svg()


def test_layer_svg_refuses_experts_that_do_not_exist() -> None:
    with pytest.raises(ValueError):
        layer_svg("x", np.full(8, 0.125), [8], [1.0], layer=0)
    with pytest.raises(ValueError):
        layer_svg("x", np.full(8, 0.125), [1, 2], [1.0], layer=0)


@pytest.mark.parametrize("value", ["the-router-is-one-matrix", "<script>", "a" * 500, ""])
def test_section_parameter_is_used_once_and_never_breaks_the_page(open_page, value: str) -> None:
    at: AppTest = open_page(LESSONS[1].page, query={"section": value})
    assert not at.exception, [e.value for e in at.exception]
    assert "section" not in at.query_params
