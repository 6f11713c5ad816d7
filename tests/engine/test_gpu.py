"""The Triton path compiled on a real GPU (deselected automatically without CUDA; see
bench/gpu_check.sh). Forward and backward against the torch reference, fp32 and bf16, small and
Mixtral-like shapes, ragged and empty experts, and int64 offsets past 2^31 elements."""

from __future__ import annotations

import pytest
import torch

from moe_core import TileConfig, fused_moe

pytestmark = pytest.mark.gpu

# fp32 uses IEEE dot products (no TF32) so it is tight; bf16 inputs round to 8 mantissa bits.
TOL = {torch.float32: dict(rtol=1e-4, atol=1e-4), torch.bfloat16: dict(rtol=2e-2, atol=2e-2)}


def inputs(num_tokens, hidden, ffn, num_experts, dtype, seed=0, skew=0.0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    x = torch.randn(num_tokens, hidden, device="cuda", generator=g).to(dtype)
    w1 = (torch.randn(num_experts, 2 * ffn, hidden, device="cuda", generator=g) / hidden**0.5).to(dtype)
    w2 = (torch.randn(num_experts, hidden, ffn, device="cuda", generator=g) / ffn**0.5).to(dtype)
    logits = torch.randn(num_tokens, num_experts, device="cuda", generator=g)
    logits[:, 0] += skew  # skew > 0 starves the other experts: ragged and empty segments
    return x, w1, w2, logits


SHAPES = [(1, 64, 128, 4, 2), (37, 128, 256, 8, 2), (300, 256, 512, 8, 1), (2048, 1024, 3584, 8, 2)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("skew", [0.0, 6.0])
def test_forward_matches_torch(dtype, shape, skew):
    x, w1, w2, logits = inputs(*shape, dtype, skew=skew)
    out = fused_moe(x, w1, w2, logits, shape[-1], backend="triton")
    ref = fused_moe(x.float(), w1.float(), w2.float(), logits, shape[-1], backend="torch")
    torch.testing.assert_close(out.float(), ref, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES[:3])
def test_backward_matches_torch(dtype, shape):
    x, w1, w2, logits = inputs(*shape, dtype, seed=1)

    def grads(backend, cast):
        leaves = [cast(t).clone().requires_grad_() for t in (x, w1, w2, logits)]
        fused_moe(*leaves[:3], leaves[3], shape[-1], backend=backend).float().pow(2).sum().backward()
        return [t.grad.float() for t in leaves]

    ours = grads("triton", lambda t: t)
    ref = grads("torch", lambda t: t.float())
    for a, b in zip(ours, ref, strict=True):
        scale = b.abs().max().clamp_min(1.0)
        torch.testing.assert_close(a / scale, b / scale, **TOL[dtype])


@pytest.mark.parametrize(
    "tiles", [TileConfig(16, 64, 128, 1), TileConfig(64, 128, 64, 8), TileConfig(128, 128, 64, 8)]
)
def test_every_named_tile_config_is_correct(tiles):
    x, w1, w2, logits = inputs(333, 256, 384, 8, torch.bfloat16, seed=2, skew=3.0)
    out = fused_moe(x, w1, w2, logits, 2, backend="triton", tiles=tiles)
    ref = fused_moe(x.float(), w1.float(), w2.float(), logits, 2, backend="torch")
    torch.testing.assert_close(out.float(), ref, **TOL[torch.bfloat16])


def test_offsets_past_two_to_the_31():
    # N*D = 2^17 tokens * 2 slots * 8192 = 2^31 elements in the down GEMM's output: 32-bit
    # offsets would wrap (the bug vLLM and SGLang both hit).
    num_tokens, hidden, ffn, num_experts = 1 << 17, 8192, 64, 4
    x, w1, w2, logits = inputs(num_tokens, hidden, ffn, num_experts, torch.bfloat16, seed=3)
    out = fused_moe(x, w1, w2, logits, 2, backend="triton")
    tail = slice(num_tokens - 64, num_tokens)  # the last rows sit past 2^31 in slot order
    ref = fused_moe(x[tail].float(), w1.float(), w2.float(), logits[tail], 2, backend="torch")
    torch.testing.assert_close(out[tail].float(), ref, **TOL[torch.bfloat16])
