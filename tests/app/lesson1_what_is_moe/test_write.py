"""Lesson 1's first screen: the language model continues the learner's text, coloured by expert."""

from __future__ import annotations

import pytest
import torch
from streamlit.testing.v1 import AppTest

from lessons.course.lm_view import lm_path
from moe_core.lm import MoELM, load_tokenizer
from tests.app.conftest import passage_html


@pytest.fixture
def lesson1(open_lesson) -> AppTest:
    return open_lesson(1)


def test_write_on_streams_the_models_own_continuation(lesson1: AppTest) -> None:
    lesson1.text_area(key="intro_lm_prompt").input("import os\n")
    lesson1.button(key="FormSubmitter:intro_lm_form-Write on").click().run()
    assert not lesson1.exception, [e.value for e in lesson1.exception]
    shown = [c.value for c in lesson1.code]
    # The same seeded sampling, run here on the model directly.
    model, tok = MoELM.from_pretrained(lm_path()).eval(), load_tokenizer(lm_path())
    ids = tok.encode("import os\n", add_special_tokens=False).ids
    with torch.inference_mode():
        made = list(model.generate(ids, max_new_tokens=48, temperature=0.7, top_k=40, seed=0))
    assert tok.decode(made).rstrip("\ufffd").strip() in [text.strip() for text in shown]
    assert "Layer 1" in passage_html(lesson1)
    assert lesson1.query_params["intro_prompt"] == "import os\n"


def test_html_in_the_prompt_is_shown_as_text(lesson1: AppTest) -> None:
    lesson1.text_area(key="intro_lm_prompt").input("<img src=x onerror=alert(1)> hi")
    lesson1.button(key="FormSubmitter:intro_lm_form-Write on").click().run()
    assert not lesson1.exception
    body = passage_html(lesson1)
    assert "<img" not in body and "&lt;" in body  # the "<" token, escaped
