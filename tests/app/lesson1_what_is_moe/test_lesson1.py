"""Lesson 1's pure parts: its figures, the efficiency arithmetic, the calculator and the live routing."""

from __future__ import annotations

import numpy as np
import pytest

from lessons.course.figures import PALETTE
from lessons.lesson1_what_is_moe import efficiency_numbers
from lessons.lesson1_what_is_moe.calculator import config_with, knobs_of
from lessons.lesson1_what_is_moe.figures import params_bars, routing_heatmap, routing_lines, timeline
from lessons.lesson1_what_is_moe.live import EXPERTS, TOKENS, route
from moe_core.model_cards import MODEL_CARDS
from moe_core.params import count_params


def test_efficiency_example_by_hand() -> None:
    # Idealised: all weights in experts -> 8 x 100B stored, 100B used.
    assert efficiency_numbers(0.0) == pytest.approx((800.0, 100.0))
    # One third shared: 33.3 + 8 x 66.7 = 566.7B stored, still 100B used per token.
    assert efficiency_numbers(1 / 3) == pytest.approx((100 / 3 + 8 * 200 / 3, 100.0))


@pytest.mark.parametrize("repo", list(MODEL_CARDS))
def test_calculator_knobs_round_trip_every_preset(repo: str) -> None:
    config = MODEL_CARDS[repo].config
    knobs = knobs_of(config)
    assert count_params(config_with(config, knobs)) == count_params(config)
    doubled = config_with(config, {**knobs, "experts": 2 * knobs["experts"]})
    before, after = count_params(config), count_params(doubled)
    # Doubling E doubles the routed experts; FLOPs grow only by the router's extra columns...
    assert after.routed_experts == 2 * before.routed_experts
    assert after.flops_per_token - before.flops_per_token == 2 * (after.router - before.router)
    assert after.router - before.router < 0.01 * before.flops_per_token  # under 1 %
    assert MODEL_CARDS[repo].config == config  # ...and the shared preset was not modified


def test_calculator_reads_real_knobs() -> None:
    assert knobs_of(MODEL_CARDS["mistralai/Mixtral-8x7B-v0.1"].config) == {
        "experts": 8, "top_k": 2, "expert_ffn": 14336, "layers": 32, "d_model": 4096, "shared": 0}
    assert knobs_of(MODEL_CARDS["Qwen/Qwen1.5-MoE-A2.7B"].config)["shared"] == 4  # 5632 / 1408
    v3 = knobs_of(MODEL_CARDS["deepseek-ai/DeepSeek-V3"].config)
    assert (v3["experts"], v3["top_k"], v3["shared"]) == (256, 8, 1)


def test_live_routing_is_nested_and_normalised() -> None:
    chosen_before: set[tuple[int, int]] = set()
    for k in range(1, EXPERTS + 1):
        w = route(k)
        assert w.shape == (len(TOKENS), EXPERTS)
        assert ((w > 0).sum(axis=1) == k).all()
        np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-5)  # renormalised top-k
        chosen = set(zip(*np.nonzero(w), strict=True))
        assert chosen_before <= chosen  # raising k only adds experts
        chosen_before = chosen
    np.testing.assert_array_equal(route(2), route(2))  # fixed seed: the same picture every time


def test_figures_carry_their_numbers() -> None:
    w = np.array([[0.7, 0.3, 0.0], [0.0, 0.0, 1.0]])
    heat = routing_heatmap(w, ["a", "b"])
    assert [list(row) for row in heat.data[0].text] == [["0.70", "0.30", ""], ["", "", "1.00"]]
    lines = routing_lines(w, ["a", "b"])
    assert len([t for t in lines.data if t.mode == "lines"]) == 3  # one per chosen (token, expert)
    assert "E2 (1 token)" in lines.data[-1].text
    bars = params_bars(["total", "active"], [46.7e9, 12.9e9], PALETTE[:2])
    assert bars.data[0].text == ("46.7B", "12.9B")
    tl = timeline(["1991", "2017"], ["a", "b"], ["x", "y"])
    assert list(tl.layout.yaxis.ticktext) == ["1991", "2017"]  # top to bottom
    assert list(tl.layout.yaxis.range) == [1.5, -0.5]
    with pytest.raises(ValueError):
        routing_heatmap(w, ["only one label"])
