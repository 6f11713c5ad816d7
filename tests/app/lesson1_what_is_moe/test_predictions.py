"""Lesson 1's two misconception predictions, answered by the calculator."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from moe_core.model_cards import MODEL_CARDS


@pytest.fixture
def lesson1(open_lesson) -> AppTest:
    return open_lesson(1)


def lock_in(at: AppTest, key: str, answer: str) -> None:
    at.radio(key=f"predict_1_{key}_choice").set_value(answer)
    at.button(key=f"FormSubmitter:predict_1_{key}-Lock in my prediction").click().run()
    assert not at.exception, [e.value for e in at.exception]


def shown(at: AppTest) -> list[str]:
    return [str(e.value) for e in [*at.info, *at.success]]


def test_eight_times_seven_is_not_the_size(lesson1: AppTest) -> None:
    assert MODEL_CARDS["mistralai/Mixtral-8x7B-v0.1"].total_b == pytest.approx(46.7)  # release post
    lock_in(lesson1, "mixtral_size", "8 × 7B = 56B")
    # The learner's answer is shown Markdown-escaped ("\\=" for "=").
    assert any("; what happened: **About 47B**" in v and "56B" in v for v in shown(lesson1)), shown(lesson1)


def test_more_experts_do_not_cost_compute(lesson1: AppTest) -> None:
    lock_in(lesson1, "more_experts", "It doubles")
    assert not any("It doubles" in v for v in shown(lesson1))  # nothing revealed before trying
    lesson1.slider(key="intro_calc_experts").set_value(16).run()
    assert not lesson1.exception
    revealed = [v for v in shown(lesson1) if "It doubles" in v]
    assert revealed and "what happened: **It grows a little" in revealed[0]
