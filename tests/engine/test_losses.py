"""Balancing losses vs transformers' load_balancing_loss_func and ST-MoE's formula."""

from __future__ import annotations

import pytest
import torch
from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

from moe_core import load_balancing_loss, router_z_loss


@pytest.mark.parametrize(
    ("num_tokens", "num_experts", "top_k"), [(64, 8, 2), (33, 4, 1), (10, 6, 6), (1, 3, 2)]
)
@pytest.mark.parametrize("seed", [0, 1])
def test_equals_transformers(num_tokens, num_experts, top_k, seed):
    logits = torch.randn(num_tokens, num_experts, generator=torch.Generator().manual_seed(seed)) * 3
    expected = load_balancing_loss_func((logits,), num_experts, top_k)
    torch.testing.assert_close(load_balancing_loss(logits, num_experts, top_k), expected)


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_balanced_router_gives_top_k(top_k):
    num_experts = 6
    # Token t prefers experts t, t+1, ... (a circulant): counts and mean probabilities are uniform.
    base = torch.tensor([5.0, 4.0, 3.0, 0.0, 0.0, 0.0])
    logits = torch.stack([base.roll(t) for t in range(num_experts)])
    assert load_balancing_loss(logits, num_experts, top_k).item() == pytest.approx(top_k, rel=1e-6)


def test_collapsed_router_scores_higher_and_gradient_pushes_away_from_hot_expert():
    logits = torch.zeros(16, 4)
    logits[:, 0] = 4.0
    logits.requires_grad_()
    loss = load_balancing_loss(logits, 4, 1)
    assert loss.item() > 3.0  # ~ E * p_hot when every token goes to one expert
    loss.backward()
    assert (logits.grad[:, 0] > 0).all()  # gradient descent lowers the hot expert's logit


def test_z_loss_formula():
    logits = torch.randn(20, 5, generator=torch.Generator().manual_seed(3)) * 4
    expected = (logits.double().exp().sum(-1).log() ** 2).mean()
    torch.testing.assert_close(router_z_loss(logits).double(), expected, rtol=1e-5, atol=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="topk"):
        load_balancing_loss(torch.randn(4, 3), 3, 4)
    with pytest.raises(ValueError, match="E=5"):
        load_balancing_loss(torch.randn(4, 3), 5, 1)
    with pytest.raises(ValueError, match="T = 0"):
        load_balancing_loss(torch.randn(0, 3), 3, 1)
    with pytest.raises(ValueError, match="NaN"):
        load_balancing_loss(torch.tensor([[0.0, float("nan")]]), 2, 1)
