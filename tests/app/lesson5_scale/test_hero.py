"""Lesson 5's first screen: stored versus used parameters, and the experts a batch touches."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from moe_core.model_cards import MODEL_CARDS


@pytest.fixture
def lesson5(open_lesson) -> AppTest:
    return open_lesson(5)


def hero_line(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("Stored: "))


def test_stored_size_is_the_published_total_and_batches_touch_most_experts(lesson5: AppTest) -> None:
    card = MODEL_CARDS["deepseek-ai/DeepSeek-V3"]
    stored = float(re.search(r"Stored: \*\*([\d,.]+)B", hero_line(lesson5)).group(1).replace(",", ""))
    assert stored == pytest.approx(card.total_b, rel=0.01)  # 671B on the model card
    lesson5.select_slider(key="scale_hero_batch").set_value(256).run()
    assert not lesson5.exception
    e, k, t = 256, 8, 256  # DeepSeek-V3: 256 routed experts, top-8
    share = 1 - (1 - k / e) ** t  # expected share of experts used at least once, uniform routing
    assert f"reaches about {share:.0%} of the experts" in hero_line(lesson5)
    assert lesson5.query_params["scale_hero_batch"] == "256"


def test_another_model_and_a_bad_link_value(open_lesson) -> None:
    at = open_lesson(5, query={"scale_hero_batch": "1e9", "scale_hero_model": "not/a-model"})
    at.selectbox(key="scale_hero_model").set_value("mistralai/Mixtral-8x7B-v0.1").run()
    line = hero_line(at)
    assert "Stored: **46.7B parameters**" in line or "Stored: **46." in line


def test_predict_then_try_the_batch(lesson5: AppTest) -> None:
    lesson5.radio(key="predict_5_batch_touches_choice").set_value("About 8: one token's worth")
    lesson5.button(key="FormSubmitter:predict_5_batch_touches-Lock in my prediction").click().run()
    assert not lesson5.exception
    assert not lesson5.info and not lesson5.success  # nothing revealed before the experiment
    lesson5.select_slider(key="scale_hero_batch").set_value(256).run()
    revealed = [i.value for i in lesson5.info]
    # 256 experts, top-8, 256 tokens: 256 * (1 - (1 - 8/256)**256) = 255.9, "nearly all".
    assert any("what happened: **Nearly all 256**" in v for v in revealed), revealed
