"""Lesson 2's family comparison: each recipe checked by hand on logits chosen to tell them apart."""

from __future__ import annotations

import math

import pytest
import torch

from lessons.lesson2_router.families import RECIPES, route_like

# Expert 0 scores highest, but its group (0, 1) is weak: group-limited routing must skip it.
LOGITS = torch.tensor([[3.0, 0.0, 2.9, 2.8, -5.0, -5.0, 1.0, 1.0]])
IDENTITY = torch.eye(8)  # the gate passes the logits through unchanged


def routed(family: str) -> tuple[list[int], list[float]]:
    recipe = next(r for r in RECIPES if r.family == family)
    routing = route_like(recipe, IDENTITY, LOGITS)
    pairs = sorted(zip(routing.topk_ids[0].tolist(), routing.topk_weights[0].tolist(), strict=True))
    return [e for e, _ in pairs], [w for _, w in pairs]


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def softmax_all() -> list[float]:
    z = [math.exp(v) for v in LOGITS[0].tolist()]
    return [v / sum(z) for v in z]


def test_mixtral_renormalises_the_top_two() -> None:
    p = softmax_all()
    ids, weights = routed("Mixtral")
    assert ids == [0, 2]
    assert weights == pytest.approx([p[0] / (p[0] + p[2]), p[2] / (p[0] + p[2])], rel=1e-5)


def test_olmoe_keeps_the_raw_probabilities() -> None:
    p = softmax_all()
    assert routed("OLMoE") == ([0, 2], pytest.approx([p[0], p[2]], rel=1e-5))


def test_gpt_oss_takes_a_softmax_over_the_chosen_logits_only() -> None:
    ids, weights = routed("gpt-oss")
    e0, e2 = math.exp(3.0), math.exp(2.9)
    assert ids == [0, 2] and weights == pytest.approx([e0 / (e0 + e2), e2 / (e0 + e2)], rel=1e-5)


def test_deepseek_v3_chooses_inside_the_best_groups_then_scales() -> None:
    # Groups of two; a group's score is the sum of its top two sigmoid scores.
    groups = {g: sig(LOGITS[0, 2 * g].item()) + sig(LOGITS[0, 2 * g + 1].item()) for g in range(4)}
    best = sorted(groups, key=groups.get, reverse=True)[:2]
    assert sorted(best) == [1, 3]  # expert 0's group is out
    ids, weights = routed("DeepSeek-V3")
    assert ids == [2, 3]
    total = sig(2.9) + sig(2.8)
    assert weights == pytest.approx([2.5 * sig(2.9) / total, 2.5 * sig(2.8) / total], rel=1e-5)


def test_llama4_takes_one_expert_with_a_sigmoid_weight() -> None:
    assert routed("Llama 4") == ([0], pytest.approx([sig(3.0)], rel=1e-5))


def test_switch_takes_one_expert_with_its_softmax_probability() -> None:
    assert routed("Switch") == ([0], pytest.approx([softmax_all()[0]], rel=1e-5))
