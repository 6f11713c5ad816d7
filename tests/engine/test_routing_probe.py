"""`moe_core.routing_probe`: the language model rerouted at inference, checked against the model itself."""

from __future__ import annotations

import math

import pytest
import torch

from moe_core.lm.model import LMConfig, MoELM
from moe_core.routing_probe import RoutingSettings, forward_with_routing, next_token_bits

TINY = LMConfig(vocab_size=64, hidden_size=32, intermediate_size=16, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=2, num_local_experts=4,
                num_experts_per_tok=2)  # fmt: skip


@pytest.fixture(scope="module")
def model() -> MoELM:
    torch.manual_seed(0)
    return MoELM(TINY).eval()


@pytest.fixture(scope="module")
def ids() -> torch.Tensor:
    return torch.randint(0, TINY.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1))


def test_the_trained_settings_reproduce_the_model_exactly(model: MoELM, ids: torch.Tensor) -> None:
    with torch.no_grad():
        ref = model(ids)
    probe = forward_with_routing(model, ids, RoutingSettings(top_k=TINY.num_experts_per_tok))
    torch.testing.assert_close(probe.logits, ref.logits, rtol=1e-5, atol=1e-5)
    for mine, theirs in zip(probe.topk_ids, ref.topk_ids, strict=True):
        assert torch.equal(mine, theirs)


def test_other_settings_change_the_logits_and_k1_picks_the_argmax(model: MoELM, ids: torch.Tensor) -> None:
    base = forward_with_routing(model, ids, RoutingSettings(top_k=2))
    one = forward_with_routing(model, ids, RoutingSettings(top_k=1))
    assert not torch.allclose(base.logits, one.logits)
    for logits_TE, ids_TK in zip(one.router_logits, one.topk_ids, strict=True):
        assert torch.equal(ids_TK[:, 0], logits_TE.argmax(-1))


def test_temperature_reshapes_weights_but_never_the_choice(model: MoELM, ids: torch.Tensor) -> None:
    cool = forward_with_routing(model, ids, RoutingSettings(top_k=2, temperature=0.5))
    hot = forward_with_routing(model, ids, RoutingSettings(top_k=2, temperature=3.0))
    for a, b in zip(cool.topk_ids[:1], hot.topk_ids[:1], strict=True):  # layer 1 sees the same input
        assert torch.equal(a, b)
    assert not torch.allclose(cool.topk_weights[0], hot.topk_weights[0])


def test_next_token_bits_by_hand() -> None:
    logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [1 / 3, 1 / 3, 1 / 3]]]))
    ids = torch.tensor([[0, 1, 2]])  # targets: token 1 after position 0 (p .25), token 2 after 1 (p .1)
    expected = (-math.log2(0.25) - math.log2(0.1)) / 2
    assert next_token_bits(logits, ids) == pytest.approx(expected, rel=1e-6)


def test_bad_settings_are_refused(model: MoELM, ids: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="top_k"):
        forward_with_routing(model, ids, RoutingSettings(top_k=5))
    with pytest.raises(ValueError, match="two tokens"):
        next_token_bits(torch.zeros(1, 1, 3), torch.zeros(1, 1, dtype=torch.long))
