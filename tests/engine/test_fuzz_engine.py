"""Fuzz moe_core's public functions with hypothesis: any input gives a ValueError with a clear
message or a result that matches the independent dense reference — never a crash, never a silent
wrong answer."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moe_reference import dense_moe, route

from moe_core import align_block_size, apply_capacity, fused_moe, load_balancing_loss, router_z_loss

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.int64]


@st.composite
def moe_inputs(draw):
    t, d, f, e = (draw(st.integers(lo, hi)) for lo, hi in ((0, 24), (1, 12), (1, 12), (1, 6)))
    # Mostly valid inputs (so results get checked), with every kind of fault mixed in.
    k = draw(st.one_of(st.integers(1, e), st.integers(1, e), st.integers(1, e), st.integers(-1, 8)))
    dtype = draw(st.sampled_from([torch.float32] * 4 + DTYPES))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    x = torch.randn(t, d, generator=g)
    w1 = torch.randn(e, 2 * f, d, generator=g) / math.sqrt(d)
    w2 = torch.randn(e, d, f, generator=g) / math.sqrt(f)
    logits = torch.randn(t, e, generator=g) * draw(st.sampled_from([0.1, 1.0, 30.0]))
    poison = draw(st.sampled_from([None] * 6 + [float("nan"), float("inf")]))
    if poison is not None and t:
        logits[draw(st.integers(0, t - 1)), 0] = poison
    if dtype == torch.int64:
        x = x.long()
    else:
        x, w1, w2 = x.to(dtype), w1.to(dtype), w2.to(dtype)
    shape_bug = draw(st.sampled_from([None] * 6 + ["w2", "logits"]))
    if shape_bug == "w2":
        w2 = w2[:, :, : max(0, f - 1)] if f > 1 else w2.new_zeros(e, d + 1, f)
    elif shape_bug == "logits":
        logits = logits[:, : e - 1] if e > 1 else logits.new_zeros(t, 2)
    return x, w1, w2, logits, k


@FUZZ
@given(moe_inputs(), st.sampled_from(["torch", "loop"]), st.booleans())
def test_fused_moe_never_silently_wrong(inputs, backend, renormalize):
    x, w1, w2, logits, k = inputs
    try:
        out = fused_moe(x, w1, w2, logits, k, renormalize=renormalize, backend=backend)
    except ValueError as exc:
        assert len(str(exc)) > 10  # a message that says something
        return
    # It ran: the inputs must have been valid, and the result right.
    assert 1 <= k <= w1.shape[0] and torch.isfinite(logits).all()
    assert out.shape == x.shape and out.dtype == x.dtype
    if x.shape[0]:
        weights, ids = route(logits.float(), k, renormalize)
        expected = dense_moe(x, w1, w2, weights, ids)
        tol = 5e-2 if x.dtype == torch.bfloat16 else 1e-4
        torch.testing.assert_close(out.double(), expected, rtol=tol, atol=tol)


@settings(max_examples=15, deadline=None)
@given(moe_inputs())
def test_fused_moe_triton_interpreter_agrees_or_refuses(inputs):
    x, w1, w2, logits, k = inputs
    try:
        ref = fused_moe(x, w1, w2, logits, k, backend="torch")
    except ValueError:
        with pytest.raises(ValueError):
            fused_moe(x, w1, w2, logits, k, backend="triton")
        return
    if x.dtype == torch.bfloat16 or x.dtype == torch.float64:
        return  # the interpreter's tl.dot is fp32-only; bf16 is checked on a GPU (tests/engine/test_gpu.py)
    out = fused_moe(x, w1, w2, logits, k, backend="triton")
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


@FUZZ
@given(st.integers(0, 40), st.integers(1, 8), st.integers(-1, 9), st.sampled_from([None, float("nan")]))
def test_losses_valid_or_clear_error(t, e, k, poison):
    logits = torch.randn(t, e, generator=torch.Generator().manual_seed(t * 31 + e))
    if poison is not None and t:
        logits[0, 0] = poison
    try:
        loss = load_balancing_loss(logits, e, k)
    except ValueError as exc:
        assert str(exc)
    else:
        assert t > 0 and 1 <= k <= e and math.isfinite(loss.item())
        assert loss.item() >= k - 1e-4 or e == 1 or loss.item() > 0  # balanced minimum is k
    if t and poison is None:
        assert math.isfinite(router_z_loss(logits).item())


@FUZZ
@given(st.integers(1, 30), st.integers(1, 5), st.integers(1, 9), st.floats(0.05, 4.0), st.integers(1, 32))
def test_dispatch_and_capacity_bookkeeping(t, k, e, cf, block):
    k = min(k, e)
    g = torch.Generator().manual_seed(t * 7 + e)
    ids = torch.stack([torch.randperm(e, generator=g)[:k] for _ in range(t)])
    cap = apply_capacity(ids, e, cf)
    assert cap.num_dropped == int((~cap.keep).sum())
    kept_counts = torch.bincount(ids[cap.keep], minlength=e)
    assert int(kept_counts.max()) <= cap.capacity
    d = align_block_size(ids.masked_fill(~cap.keep, -1), e, block)
    real = d.sorted_slot_ids[d.sorted_slot_ids < t * k]
    assert sorted(real.tolist()) == sorted(torch.nonzero(cap.keep.reshape(-1)).flatten().tolist())
    assert d.num_padded_rows % block == 0
