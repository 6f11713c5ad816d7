"""SparseMoE composes router, capacity, experts and shared experts correctly."""

from __future__ import annotations

import pytest
import torch
from moe_reference import dense_moe

from moe_core import MoEConfig, SparseMoE, expert_choice


def build(seed=0, **overrides):
    torch.manual_seed(seed)
    return SparseMoE(MoEConfig(hidden_size=16, intermediate_size=24, num_experts=4, top_k=2, **overrides))


@pytest.mark.parametrize("backend", ["loop", "torch", "triton"])
def test_layer_equals_reference_formula(backend):
    layer = build(backend=backend)
    x = torch.randn(3, 5, 16)  # leading dims are flattened and restored
    out = layer(x)
    x_TD = x.reshape(-1, 16)
    probs = torch.softmax((x_TD @ layer.router.gate.weight.t()).double(), -1)
    w, ids = torch.topk(probs, 2)
    expected = dense_moe(
        x_TD, layer.experts.w1.detach(), layer.experts.w2.detach(), w / w.sum(-1, keepdim=True), ids
    )
    assert out.hidden_states.shape == x.shape
    torch.testing.assert_close(out.hidden_states.reshape(-1, 16).double(), expected, rtol=1e-4, atol=1e-5)
    assert out.tokens_per_expert.sum() == 15 * 2
    assert torch.equal(out.topk_ids, ids)


def test_shared_experts_are_added_to_every_token():
    layer = build(num_shared_experts=2, shared_intermediate_size=8)
    x = torch.randn(6, 16)
    out = layer(x).hidden_states
    shared = layer.shared_experts
    gate, up = (x @ shared.gate_up_proj.weight.t()).chunk(2, -1)
    shared_out = (torch.nn.functional.silu(gate) * up) @ shared.down_proj.weight.t()
    routed = layer.experts(x, *reversed(_topk(layer, x)))
    torch.testing.assert_close(out, routed + shared_out)
    assert shared.gate_up_proj.weight.shape == (2 * 2 * 8, 16)


def _topk(layer, x):
    r = layer.router(x)
    return r.topk_ids, r.topk_weights


def test_capacity_drops_slots_and_they_contribute_nothing():
    layer = build(capacity_factor=0.5)
    with torch.no_grad():
        layer.router.gate.weight[0] += 3.0  # push many tokens to expert 0 so it overflows
    x = torch.randn(32, 16).abs()
    out = layer(x)
    assert out.num_dropped > 0
    keep = out.capacity.keep
    expected = dense_moe(
        x, layer.experts.w1.detach(), layer.experts.w2.detach(), out.topk_weights, out.topk_ids, keep
    )
    torch.testing.assert_close(out.hidden_states.double(), expected, rtol=1e-4, atol=1e-5)
    assert int(out.tokens_per_expert.sum()) == 64 - out.num_dropped
    assert int(out.tokens_per_expert.max()) <= out.capacity.capacity


def test_noisy_routing_is_reproducible_with_a_seeded_generator():
    layer = build(router_noise_std=1.0)
    x = torch.randn(50, 16)
    a = layer(x, generator=torch.Generator().manual_seed(7)).topk_ids
    b = layer(x, generator=torch.Generator().manual_seed(7)).topk_ids
    c = layer(x, generator=torch.Generator().manual_seed(8)).topk_ids
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sigmoid_bias_selects_with_bias_but_weights_without():
    layer = build(routing="sigmoid_bias", renormalize=False)
    x = torch.randn(40, 16)
    layer.router.expert_bias[:] = torch.tensor([0.0, 0.0, 0.0, 100.0])
    r = layer.router(x)
    assert (r.topk_ids == 3).any(dim=1).all()  # the bias forces expert 3 into every top-2
    scores = torch.sigmoid(x @ layer.router.gate.weight.t())
    torch.testing.assert_close(r.topk_weights, scores.gather(1, r.topk_ids))


def test_expert_choice_gives_equal_loads():
    logits = torch.randn(24, 4, generator=torch.Generator().manual_seed(0))
    ec = expert_choice(logits, capacity_factor=1.0, top_k=2)
    assert ec.token_ids.shape == (4, 12)
    assert ec.tokens_per_expert.tolist() == [12] * 4
    assert int(ec.experts_per_token.sum()) == 48


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"top_k": 9}, "top_k"),
        ({"num_experts": 0}, "num_experts"),
        ({"capacity_factor": 0.0}, "capacity_factor"),
        ({"routing": "random"}, "routing"),
        ({"router_temperature": 0}, "router_temperature"),
        ({"backend": "gpu"}, "backend"),
    ],
)
def test_config_validation_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        MoEConfig(**overrides)


def test_wrong_hidden_size_is_a_clear_error():
    with pytest.raises(ValueError, match="D=16"):
        build()(torch.randn(4, 8))
