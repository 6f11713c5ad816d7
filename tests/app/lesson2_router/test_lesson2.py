"""Lesson 2 (the router) in AppTest: every control changes what the figures show.

Assertions read the Plotly figure data the page sends, and compare it with numbers computed here
straight from `moe_core` (the trained demo's gate, `softmax_topk`, `expert_choice`), not with the
lesson's own helpers. Note: a widget callback reruns only the panels that depend on it, so after
an interaction the tree holds those panels' elements only.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from lessons.course.text import LESSONS
from moe_core.router import expert_choice, softmax_topk
from moe_core.router_demo import load_router_demo
from moe_core.text_data import EXAMPLES
from tests.app.conftest import chart_spec as figure
from tests.app.conftest import texts

PAGE = LESSONS[1].page
FIRST = next(iter(EXAMPLES.values()))


def chosen_cells(spec: dict) -> set[tuple[int, str]]:
    """(row, expert) of every outlined top-k cell of a router heatmap."""
    marks = spec["data"][1]
    return set(zip(marks["y"], marks["x"], strict=True))


def gate_logits(text: str) -> torch.Tensor:
    """Router logits [T, E] of the committed demo model, computed here without the lesson."""
    model = load_router_demo()
    with torch.no_grad():
        return model.moe.router.gate(model.sentence_hidden(text)[2])


@pytest.fixture
def lesson2(open_page) -> AppTest:
    at = open_page(PAGE)
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_all_panels_render_with_the_url_filled_in(lesson2: AppTest) -> None:
    for key in ("router_heatmap_chart", "router_stage_chart", "router_sliders_chart", "router_load_chart",
                "router_compare_chart", "router_ept_chart"):
        figure(lesson2, key)
    assert lesson2.query_params["router_k"] == "2"
    assert lesson2.query_params["router_text"] == FIRST
    heat = figure(lesson2, "router_heatmap_chart")["data"][0]
    probs = torch.softmax(gate_logits(FIRST), -1).numpy()
    np.testing.assert_allclose(np.array(heat["z"]), probs, rtol=1e-5, atol=1e-6)


def test_example_picker_and_typed_sentence_change_the_heatmap(lesson2: AppTest) -> None:
    lesson2.selectbox(key="router_example").set_value("Music").run()
    spec = figure(lesson2, "router_heatmap_chart")
    assert spec["layout"]["yaxis"]["ticktext"][:3] == ["0 the", "1 band", "2 plays"]
    assert lesson2.query_params["router_text"] == EXAMPLES["Music"]
    figure(lesson2, "router_sliders_chart")  # the sentence also reran the sliders' panel
    lesson2.text_input(key="router_text").input("the chef plays zebra").run()
    spec = figure(lesson2, "router_heatmap_chart")
    assert spec["layout"]["yaxis"]["ticktext"] == ["0 the", "1 chef", "2 plays", "3 zebra"]
    assert "routed as <unk>: zebra" in texts(lesson2)
    assert lesson2.selectbox(key="router_example").value == "Your own sentence"


def test_a_sentence_without_words_shows_a_hint(lesson2: AppTest) -> None:
    lesson2.text_input(key="router_text").input("?!").run()
    assert not lesson2.exception
    assert "Type at least one word" in texts(lesson2)
    assert not [c for c in lesson2.get("plotly_chart") if c.proto.id.endswith("router_heatmap_chart")]


@pytest.mark.parametrize("empty", ["", "123 !!!"])
def test_a_sentence_after_an_empty_one_keeps_the_token_slider(lesson2: AppTest, empty: str) -> None:
    # Issue 18: with no words the token slider is not drawn, Streamlit drops its value, and the
    # next sentence used to crash the step-through with KeyError 'router_token'.
    lesson2.select_slider(key="router_token").set_value(2).run()
    lesson2.run()  # the whole page again: the slider's callback reran only its own panel
    lesson2.text_input(key="router_text").input(empty).run()
    assert not lesson2.exception, [e.value for e in lesson2.exception]
    lesson2.text_input(key="router_text").input("the chef plays music").run()
    assert not lesson2.exception, [e.value for e in lesson2.exception]
    assert lesson2.select_slider(key="router_token").value == 2  # what the learner had chosen
    figure(lesson2, "router_stage_chart")


def test_a_long_sentence_is_cut_to_forty_rows_with_a_note(lesson2: AppTest) -> None:
    lesson2.text_input(key="router_text").input(" ".join(["the chef"] * 30)).run()  # 60 words
    assert len(figure(lesson2, "router_heatmap_chart")["layout"]["yaxis"]["ticktext"]) == 40
    assert "Only the first 40 of 60 words" in texts(lesson2)


def test_view_toggle_shows_the_raw_logits(lesson2: AppTest) -> None:
    lesson2.segmented_control(key="router_view").set_value("logits").run()
    heat = figure(lesson2, "router_heatmap_chart")["data"][0]
    np.testing.assert_allclose(np.array(heat["z"]), gate_logits(FIRST).numpy(), rtol=1e-5, atol=1e-6)
    assert heat["colorbar"]["title"]["text"] == "logit"
    assert lesson2.query_params["router_view"] == "logits"


def test_k_slider_sets_the_number_of_chosen_cells_and_the_load(lesson2: AppTest) -> None:
    words = len(FIRST.split())
    assert len(chosen_cells(figure(lesson2, "router_sliders_chart"))) == 2 * words
    lesson2.slider(key="router_k").set_value(3).run()
    assert len(chosen_cells(figure(lesson2, "router_sliders_chart"))) == 3 * words
    assert sum(figure(lesson2, "router_load_chart")["data"][0]["y"]) == 3 * words
    expected = softmax_topk(gate_logits(FIRST), 3).topk_ids
    assert chosen_cells(figure(lesson2, "router_sliders_chart")) == {
        (t, f"E{e}") for t, row in enumerate(expected.tolist()) for e in row}
    assert lesson2.query_params["router_k"] == "3"
    # The step-through follows the sliders: three experts in its stage chart.
    gates = figure(lesson2, "router_stage_chart")["data"][1]["y"]
    assert sum(g > 0 for g in gates) == 3


def test_temperature_flattens_the_weights_but_keeps_the_choice(lesson2: AppTest) -> None:
    before = figure(lesson2, "router_sliders_chart")
    lesson2.slider(key="router_temperature").set_value(4.0).run()
    after = figure(lesson2, "router_sliders_chart")
    assert chosen_cells(after) == chosen_cells(before)
    z = np.array(after["data"][0]["z"])
    np.testing.assert_allclose(z, torch.softmax(gate_logits(FIRST) / 4.0, -1).numpy(), rtol=1e-5, atol=1e-6)
    assert z.max() < np.array(before["data"][0]["z"]).max()


def test_noise_and_its_seed_change_the_choice(lesson2: AppTest) -> None:
    before = chosen_cells(figure(lesson2, "router_sliders_chart"))
    lesson2.slider(key="router_noise").set_value(3.0).run()
    noisy = figure(lesson2, "router_sliders_chart")
    logits = gate_logits(FIRST)
    expected = softmax_topk(logits, 2, True, 1.0, 3.0, torch.Generator().manual_seed(0))
    np.testing.assert_allclose(np.array(noisy["data"][0]["z"]), expected.router_probs.numpy(), atol=1e-6)
    assert chosen_cells(noisy) != before
    lesson2.number_input(key="router_seed").set_value(7).run()
    reseeded = figure(lesson2, "router_sliders_chart")
    assert reseeded["data"][0]["z"] != noisy["data"][0]["z"]
    assert lesson2.query_params["router_seed"] == "7"


def test_renormalise_toggle_changes_the_printed_gate_weights(lesson2: AppTest) -> None:
    def weights(spec: dict) -> np.ndarray:
        text = np.array(spec["data"][0]["text"])  # gate weights printed in the chosen cells, "" elsewhere
        return np.where(text == "", "0", text).astype(float)

    on = weights(figure(lesson2, "router_sliders_chart"))
    np.testing.assert_allclose(on.sum(1), 1.0, atol=0.02)  # printed to 2 decimals
    lesson2.toggle(key="router_renorm").set_value(False).run()
    off = weights(figure(lesson2, "router_sliders_chart"))
    probs = torch.softmax(gate_logits(FIRST), -1).numpy()
    expected = np.where(off > 0, probs, 0.0)
    np.testing.assert_allclose(off, expected, atol=0.006)
    assert (off.sum(1) < 0.999).all()
    assert lesson2.query_params["router_renorm"] == "0"


def test_token_slider_steps_through_another_token(lesson2: AppTest) -> None:
    lesson2.select_slider(key="router_token").set_value(3).run()
    probs = figure(lesson2, "router_stage_chart")["data"][0]["y"]
    expected = torch.softmax(gate_logits(FIRST)[3], -1).numpy()
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
    table = lesson2.table[0].value  # the step-through's stages, a static table
    assert [float(v) for v in table.iloc[0]] == pytest.approx(gate_logits(FIRST)[3].tolist(), abs=1e-4)
    assert "largest difference" in texts(lesson2)
    assert lesson2.query_params["router_token"] == "3"


def test_expert_choice_capacity_sets_tokens_per_expert(lesson2: AppTest) -> None:
    lesson2.slider(key="router_ec_cf").set_value(1.0).run()
    spec = figure(lesson2, "router_compare_chart")
    logits = torch.cat([gate_logits(s) for s in EXAMPLES.values()])
    tokens, experts = logits.shape
    capacity = math.ceil(tokens / experts)
    assert spec["data"][2]["y"] == [capacity] * experts
    assert spec["data"][1]["y"] == torch.bincount(softmax_topk(logits, 2).topk_ids.flatten(),
                                                  minlength=experts).tolist()
    hist = figure(lesson2, "router_ept_chart")["data"][1]["y"]
    assert hist == np.bincount(expert_choice(logits, 1.0).experts_per_token.numpy(), minlength=3).tolist()
    assert hist[0] > 0  # at CF = 1 some tokens get no expert at all
    assert lesson2.query_params["router_ec_cf"] == "1.0"


def test_bad_url_values_are_clamped_or_replaced_with_a_notice(open_page) -> None:
    at = open_page(PAGE, query={"router_k": "99", "router_temperature": "warm", "router_noise": "-4",
                                "router_token": "2", "router_text": "the coach kicks the ball"})
    assert not at.exception
    assert at.slider(key="router_k").value == 8
    assert at.slider(key="router_temperature").value == 1.0
    assert at.slider(key="router_noise").value == 0.0
    shown = texts(at)
    assert "Link settings adjusted" in shown
    assert "99 is outside 1–8" in shown and "'warm'" in shown
    assert figure(at, "router_heatmap_chart")["layout"]["yaxis"]["ticktext"][1] == "1 coach"
    assert at.query_params["router_k"] == "8"


def test_the_specialisation_note_is_built_only_when_opened(lesson2: AppTest) -> None:
    from moe_core.text_data import DOMAINS

    assert "of the topic's information" not in texts(lesson2)  # collapsed: not built
    assert not [d for d in lesson2.dataframe if list(d.value.index) == list(DOMAINS)]
    lesson2.session_state["router_specialisation"] = True  # the learner opens it
    lesson2.run()
    assert not lesson2.exception
    assert "of the topic's information" in texts(lesson2)
    share = next(d.value for d in lesson2.dataframe if list(d.value.index) == list(DOMAINS))
    assert list(share.columns) == [f"E{e}" for e in range(share.shape[1])]
    np.testing.assert_allclose(share.sum(axis=1), 1.0, atol=0.03)  # each topic's slots, rounded to 0.01
    lesson2.text_input(key="router_text").set_value("the coach kicks the ball").run()
    lesson2.run()  # AppTest's tree after a fragment-only rerun leaves the rest of the page out
    assert "of the topic's information" in texts(lesson2)  # still open after the sentence changed
