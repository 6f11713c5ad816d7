"""Pure parts of the course frame: Markdown/maths splitting, number formats, the "continue" target."""

from __future__ import annotations

import pytest

from lessons.course.figures import human_count, human_flops
from lessons.course.sidebar import LessonStatus, ProgressView
from lessons.course.text import LESSONS, Block, load_goals, load_sections, split_math


def test_split_math_separates_display_maths() -> None:
    text = "Intro with $x$ inline.\n\n$$ y = \\sum_i g_i E_i(x) $$\n\nAfter.\nMore $$a$$ tail"
    assert split_math(text) == [
        Block("markdown", "Intro with $x$ inline."),
        Block("latex", "y = \\sum_i g_i E_i(x)"),
        Block("markdown", "After.\nMore"),
        Block("latex", "a"),
        Block("markdown", " tail"),
    ]


def test_split_math_leaves_code_fences_alone() -> None:
    text = "Before\n\n```python\ncost = '$$not maths$$'\n```\n\n$$z$$"
    blocks = split_math(text)
    assert blocks[0] == Block("markdown", "Before\n\n```python\ncost = '$$not maths$$'\n```")
    assert blocks[1] == Block("latex", "z")


def test_every_lesson_has_goals_and_sections() -> None:
    for info in LESSONS:
        goals = load_goals(info.number)
        assert goals and goals.lstrip().startswith("-"), f"lesson {info.number} goals"
        sections = load_sections(info.number)
        assert sections, f"lesson {info.number} has no sections"
        for section in sections:
            assert section.blocks[0].kind == "markdown" and section.blocks[0].text.startswith("## ")


def test_human_units() -> None:
    assert human_count(46_702_792_704) == "46.7B"
    assert human_count(671_000_000_000) == "671B"
    assert human_count(1.6e12) == "1.6T"
    assert human_count(12) == "12"
    assert human_flops(2.52e10) == "25.2 GFLOPs"


@pytest.mark.parametrize(("last", "passed", "expected"), [
    (None, set(), 1), (None, {1, 2}, 3), (3, set(), 3), (3, {3}, 4), (5, {5}, 1),
    (5, {1, 5}, 2), (2, {1, 2, 3, 4, 5}, 2), (None, {1, 2, 3, 4, 5}, 1),
])
def test_continue_target(last, passed, expected) -> None:
    view = ProgressView({n: LessonStatus(1.0, 1, True) for n in passed}, last_visited=last)
    assert view.next_lesson() == expected
