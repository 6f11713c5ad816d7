"""load_block on the compiled Triton path (CUDA only; deselected without a GPU, see conftest.py):
every family of test_hf_blocks against transformers' block on the same GPU, forward and backward.
The general expert path (biases, other activations, weight on the input) chains two grouped GEMMs
with torch in between; this is where its compiled kernels and autotuning are exercised."""

from __future__ import annotations

import pytest
import torch
from test_hf_blocks import FAMILIES, _config_dict, _hf_block, _run_hf

from moe_core.hf import load_block

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("family", list(FAMILIES))
def test_block_on_cuda_triton_matches_transformers(family):
    config, hf, router_attr, read_router = _hf_block(family)
    hf = hf.cuda()
    ours = load_block(_config_dict(config), hf.state_dict(), backend="triton").cuda()
    x = torch.randn(4, 33, hf_hidden := x_dim(config), device="cuda")
    x_hf, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    hf_out, _, hf_ids = _run_hf(hf, router_attr, read_router, x_hf)
    out = ours(x_ours)
    assert torch.equal(out.topk_ids.sort(dim=-1).values, hf_ids.sort(dim=-1).values)
    # fp32 with IEEE dot products in the kernel; transformers' own CUDA matmuls may use other orders.
    torch.testing.assert_close(out.hidden_states.reshape(-1, hf_hidden), hf_out, rtol=1e-4, atol=1e-4)
    probe = torch.randn_like(hf_out)
    (hf_out * probe).sum().backward()
    (out.hidden_states.reshape(-1, hf_hidden) * probe).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_hf.grad, rtol=1e-3, atol=1e-3)


def x_dim(config) -> int:
    return getattr(config, "hidden_size", None) or config.d_model
