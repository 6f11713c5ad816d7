"""Routing and expert options added for the transformers families (issue 16), and the bugs found
while adding them. Every expected value is a plain-torch formula written out here, independent of
moe_core's code paths."""

from __future__ import annotations

import pytest
import torch

from moe_core import fused_moe, moe_experts, sigmoid_bias_topk

# --- issue 16 bugs ----------------------------------------------------------------------------


def _expert_inputs(dtype, seed=0, num_tokens=8, hidden=32, ffn=32, num_experts=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(num_tokens, hidden, generator=g)
    w1 = torch.randn(num_experts, 2 * ffn, hidden, generator=g) / hidden**0.5
    w2 = torch.randn(num_experts, hidden, ffn, generator=g) / ffn**0.5
    logits = torch.randn(num_tokens, num_experts, generator=g)
    return x.to(dtype), w1.to(dtype), w2.to(dtype), logits


def test_triton_bf16_matches_torch_backend():
    # Triton's CPU interpreter has no bf16 tl.dot: it used to return values near 1e10, silently.
    x, w1, w2, logits = _expert_inputs(torch.bfloat16)
    expected = fused_moe(x.float(), w1.float(), w2.float(), logits, 2, backend="torch")
    out = fused_moe(x, w1, w2, logits, 2, backend="triton")
    assert out.dtype == torch.bfloat16
    # bf16 inputs, fp32 accumulation, one bf16 rounding of the output: ~3 significant digits.
    torch.testing.assert_close(out.float(), expected, rtol=2e-2, atol=2e-2)


def test_triton_bf16_backward_matches_fp32_autograd():
    x, w1, w2, logits = _expert_inputs(torch.bfloat16, seed=1)
    grads = {}
    for name, dtype, backend in (("fp32", torch.float32, "torch"), ("bf16", torch.bfloat16, "triton")):
        leaves = [t.to(dtype).requires_grad_() for t in (x, w1, w2)]
        fused_moe(*leaves, logits, 2, backend=backend).float().square().sum().backward()
        grads[name] = [t.grad.float() for t in leaves]
    for got, want in zip(grads["bf16"], grads["fp32"], strict=True):
        assert got.abs().max() < 1e3  # the interpreter's bf16 failure mode was ~1e10
        # bf16 output and gradients: two roundings of 2^-8 relative each.
        torch.testing.assert_close(got, want, rtol=3e-2, atol=3e-2 * want.abs().max().item())


def test_triton_float64_is_refused_not_wrong():
    # float64 used to come back as zeros; the kernel computes in fp32, so it now refuses.
    x, w1, w2, logits = _expert_inputs(torch.float64)
    with pytest.raises(ValueError, match="float64"):
        fused_moe(x, w1, w2, logits, 2, backend="triton")


def test_sigmoid_bias_topk_weights_are_finite_when_scores_underflow():
    # sigmoid(-200) == 0 in float32: 0/0 gave NaN; transformers adds 1e-20 to the denominator.
    logits = torch.full((3, 4), -200.0)
    routing = sigmoid_bias_topk(logits, 2, torch.zeros(4))
    assert torch.isfinite(routing.topk_weights).all()
    torch.testing.assert_close(routing.topk_weights, torch.zeros(3, 2), rtol=0, atol=0)


@pytest.mark.parametrize("bad_id", [4, 7, -2])
@pytest.mark.parametrize("backend", ["torch", "loop", "triton"])
def test_expert_id_out_of_range_is_refused(bad_id, backend):
    x, w1, w2, _ = _expert_inputs(torch.float32)
    ids = torch.tensor([[0, 1]] * 8)
    ids[3, 1] = bad_id
    with pytest.raises(ValueError, match="topk_ids"):
        moe_experts(x, w1, w2, torch.full((8, 2), 0.5), ids, backend=backend)


def test_minus_one_still_marks_a_dropped_slot():
    x, w1, w2, _ = _expert_inputs(torch.float32)
    ids = torch.tensor([[0, -1]] * 8)
    weights = torch.full((8, 2), 0.5)
    out = moe_experts(x, w1, w2, weights, ids, backend="torch")
    gate, up = (x @ w1[0].t()).chunk(2, dim=-1)
    expected = 0.5 * (torch.nn.functional.silu(gate) * up) @ w2[0].t()
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
