"""fused_moe on every backend vs an independent dense formula and vs transformers' Mixtral block."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from moe_reference import dense_moe, route

from moe_core import fused_moe

BACKENDS = ["loop", "torch", "triton"]  # triton runs in the interpreter on a CPU


def make_inputs(num_tokens, hidden, ffn, num_experts, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(num_tokens, hidden, generator=g)
    w1 = torch.randn(num_experts, 2 * ffn, hidden, generator=g) / hidden**0.5
    w2 = torch.randn(num_experts, hidden, ffn, generator=g) / ffn**0.5
    logits = torch.randn(num_tokens, num_experts, generator=g)
    return x.to(dtype), w1.to(dtype), w2.to(dtype), logits


# (T, D, F, E, K, logits transform): T=1; T not a multiple of the 16-row block; experts with no
# tokens (logits favour experts 0 and 1); every token on one expert; k = 1; k = E.
CASES = {
    "single-token": (1, 32, 48, 4, 2, None),
    "ragged-T": (37, 32, 48, 6, 2, None),
    "empty-experts": (20, 16, 32, 8, 2, lambda lg: lg + torch.tensor([9.0, 8.0] + [0.0] * 6)),
    "all-on-one": (24, 16, 32, 4, 1, lambda lg: lg + torch.tensor([0.0, 0.0, 20.0, 0.0])),
    "k1": (30, 32, 32, 4, 1, None),
    "k-equals-E": (17, 16, 32, 4, 4, None),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("renormalize", [True, False])
def test_matches_dense_reference_fp32(backend, case, renormalize):
    num_tokens, hidden, ffn, num_experts, top_k, transform = CASES[case]
    x, w1, w2, logits = make_inputs(num_tokens, hidden, ffn, num_experts)
    if transform:
        logits = transform(logits)
    weights, ids = route(logits, top_k, renormalize)
    expected = dense_moe(x, w1, w2, weights, ids)
    out = fused_moe(x, w1, w2, logits, top_k, renormalize=renormalize, backend=backend)
    assert out.shape == x.shape and out.dtype == x.dtype
    # fp32 sums of <= 2F products; the reference is float64.
    torch.testing.assert_close(out.double(), expected, rtol=1e-4, atol=1e-5)


def test_bf16_torch_path_close_to_fp64_reference():
    x, w1, w2, logits = make_inputs(64, 64, 128, 8, seed=3)
    weights, ids = route(logits, 2)
    expected = dense_moe(x, w1, w2, weights, ids)
    for backend in ("torch", "loop"):
        out = fused_moe(x.bfloat16(), w1.bfloat16(), w2.bfloat16(), logits, 2, backend=backend)
        assert out.dtype == torch.bfloat16
        # bf16 has 8 mantissa bits: ~0.4% per rounding, a few roundings per output element.
        torch.testing.assert_close(out.double(), expected, rtol=3e-2, atol=3e-2)


def test_matches_transformers_mixtral_block():
    from transformers import MixtralConfig
    from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock

    num_tokens, hidden, ffn, num_experts, top_k = 29, 32, 64, 8, 2
    config = MixtralConfig(
        hidden_size=hidden, intermediate_size=ffn, num_local_experts=num_experts, num_experts_per_tok=top_k
    )
    block = MixtralSparseMoeBlock(config).eval()
    x, w1, w2, _ = make_inputs(num_tokens, hidden, ffn, num_experts, seed=5)
    gate_weight = torch.randn(num_experts, hidden, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        block.gate.weight.copy_(gate_weight)
        block.experts.gate_up_proj.copy_(w1)
        block.experts.down_proj.copy_(w2)
        expected = block(x[None])[0]
        if isinstance(expected, tuple):
            expected = expected[0]
        expected = expected.reshape(num_tokens, hidden)
    for backend in BACKENDS:
        out = fused_moe(x, w1, w2, x @ gate_weight.t(), top_k, backend=backend)
        torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", ["ragged-T", "empty-experts", "k-equals-E"])
def test_triton_gradients_match_torch(case):
    num_tokens, hidden, ffn, num_experts, top_k, transform = CASES[case]

    def grads(backend):
        x, w1, w2, logits = make_inputs(num_tokens, hidden, ffn, num_experts, seed=11)
        if transform:
            logits = transform(logits)
        leaves = [t.clone().requires_grad_() for t in (x, w1, w2, logits)]
        out = fused_moe(*leaves, top_k, backend=backend)
        probe = torch.linspace(-1, 1, hidden)  # a non-uniform upstream gradient
        (out * probe).sum().backward()
        return [t.grad for t in leaves]

    for name, ours, ref in zip(
        ("x", "w1", "w2", "gating_output"), grads("triton"), grads("torch"), strict=True
    ):
        torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5, msg=lambda m, n=name: f"grad {n}: {m}")


def test_gradients_of_torch_path_match_float64_autograd():
    """The reference paths themselves: compare against autograd through the dense formula."""
    x, w1, w2, logits = make_inputs(13, 16, 32, 4, seed=2)
    x64 = [t.double().requires_grad_() for t in (x, w1, w2)]
    weights, ids = route(logits, 2)
    dense_moe(*x64, weights, ids).pow(2).sum().backward()
    leaves = [t.clone().requires_grad_() for t in (x, w1, w2)]
    from moe_core import moe_experts

    moe_experts(*leaves, weights.float(), ids, backend="torch").pow(2).sum().backward()
    for ours, ref in zip(leaves, x64, strict=True):
        torch.testing.assert_close(ours.grad.double(), ref.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_batch_gives_empty_output(backend):
    x, w1, w2, logits = make_inputs(0, 16, 32, 4)
    out = fused_moe(x, w1, w2, logits, 2, backend=backend)
    assert out.shape == (0, 16)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: {**a, "hidden_states": a["hidden_states"][None]}, "hidden_states must have shape"),
        (lambda a: {**a, "w1": a["w1"][:, :, :8]}, "w1 must be"),
        (lambda a: {**a, "w2": a["w2"][:, :8]}, "w2 must be"),
        (lambda a: {**a, "gating_output": a["gating_output"][:, :3]}, "gating_output must be"),
        (lambda a: {**a, "topk": 5}, "topk must be in 1..E"),
        (lambda a: {**a, "topk": 0}, "topk must be in 1..E"),
        (lambda a: {**a, "w1": a["w1"].double()}, "share a dtype"),
        (lambda a: {**a, "hidden_states": a["hidden_states"].long()}, "floating"),
        (
            lambda a: {
                **a,
                "gating_output": a["gating_output"].index_fill(0, torch.tensor([2]), float("nan")),
            },
            "NaN",
        ),
        (lambda a: {**a, "backend": "cuda-magic"}, "backend must be"),
    ],
)
def test_bad_input_raises_clear_value_error(mutate, message):
    x, w1, w2, logits = make_inputs(8, 16, 32, 4)
    args = dict(hidden_states=x, w1=w1, w2=w2, gating_output=logits, topk=2)
    with pytest.raises(ValueError, match=message):
        fused_moe(**mutate(args))


def test_import_does_not_load_triton_and_sets_the_interpreter_without_a_gpu():
    # moe_core owns the choice at import (DESIGN.md, "Who turns on Triton's interpreter"): it sets
    # the variable when no CUDA device is present, and never imports Triton itself.
    code = (
        "import os, sys, torch, moe_core\n"
        "assert 'triton' not in sys.modules, 'import moe_core imported triton'\n"
        "assert os.environ.get('TRITON_INTERPRET') == (None if torch.cuda.is_available() else '1')\n"
        "x = torch.randn(4, 16); w1 = torch.randn(2, 32, 16); w2 = torch.randn(2, 16, 16)\n"
        "moe_core.fused_moe(x, w1, w2, torch.randn(4, 2), 1, backend='triton')\n"
        "print(os.environ.get('TRITON_INTERPRET'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    expected = "1" if not torch.cuda.is_available() else "None"
    assert result.stdout.strip() == expected


def test_triton_missing_gives_clear_error():
    code = (
        "import sys, torch\n"
        "sys.modules['triton'] = None  # make 'import triton' fail\n"
        "import moe_core\n"
        "x = torch.randn(4, 16); w1 = torch.randn(2, 32, 16); w2 = torch.randn(2, 16, 16)\n"
        "print(moe_core.fused_moe(x, w1, w2, torch.randn(4, 2), 1, backend='torch').shape)\n"
        "try:\n"
        "    moe_core.fused_moe(x, w1, w2, torch.randn(4, 2), 1, backend='triton')\n"
        "except RuntimeError as e:\n"
        "    print('ERR', e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "torch.Size([4, 16])" in result.stdout
    assert "ERR" in result.stdout and "pip install" in result.stdout
