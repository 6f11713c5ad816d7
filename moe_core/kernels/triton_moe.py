"""The routed experts on the Triton grouped GEMM, forward and backward.

Imported lazily by `moe_core.kernels.load_triton` (it imports triton). Forward is two launches:

    act[s] = silu(x[t] @ gate_e^T) * (x[t] @ up_e^T)        # gate/up GEMM, SwiGLU fused   [N, F]
    y[s]   = p_s * act[s] @ w2_e^T                          # down GEMM, weight fused       [N, D]
    out[t] = sum_k y[t*K + k]                               # combine                       [T, D]

Backward recomputes the gate/up GEMM (activation recomputation: the pre-activations are 2F
wide, cheaper to recompute than to keep) and runs four more grouped GEMMs:

    dA'[s] = dout[t] @ w2_e                (unweighted; dp_s = <dA'[s], act[s]>)
    dh1[s] = SwiGLU'(p_s * dA'[s])         (elementwise, torch)
    dx[t]  = sum_k dh1[s] @ w1_e
    dw2[e] = sum_s (p_s dout[t])^T act[s],   dw1[e] = sum_s dh1[s]^T x[t]   (segment reductions)
"""

from __future__ import annotations

import torch
import triton

from moe_core.dispatch import Dispatch, align_block_size
from moe_core.kernels.grouped_gemm import grouped_gemm_kernel, grouped_wgrad_kernel
from moe_core.kernels.tiles import TileConfig


def grouped_gemm(
    a: torch.Tensor,
    b: torch.Tensor,
    dispatch: Dispatch,
    a_row_div: int,
    out_cols: int,
    tiles: TileConfig,
    fuse_silu_mul: bool = False,
    slot_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """C[s] = A[s // a_row_div] @ B[e(s)]^T for every routed slot s; rows of dropped slots are 0.

    b is [E, out_cols (x2 when fused), K_in] and may be a strided (e.g. transposed) view.
    """
    c = a.new_zeros(dispatch.num_slots, out_cols)
    num_blocks = dispatch.block_expert_ids.numel()
    if num_blocks == 0:
        return c
    if dispatch.block_size != tiles.block_m:
        raise ValueError(f"dispatch block_size {dispatch.block_size} != tiles.block_m {tiles.block_m}")
    grid = lambda META: (num_blocks * triton.cdiv(out_cols, META["BLOCK_N"]),)
    grouped_gemm_kernel[grid](
        a, b, c, slot_weights if slot_weights is not None else c,
        dispatch.sorted_slot_ids, dispatch.block_expert_ids,
        out_cols, a.shape[1], dispatch.num_slots, dispatch.num_padded_rows, a_row_div,
        a.stride(0), a.stride(1), b.stride(0), b.stride(1), b.stride(2), c.stride(0), c.stride(1),
        BLOCK_M=tiles.block_m, BLOCK_N=tiles.block_n, BLOCK_K=tiles.block_k, GROUP_M=tiles.group_m,
        FUSE_SILU_MUL=fuse_silu_mul, MUL_SLOT_WEIGHT=slot_weights is not None,
        IEEE_FP32=a.dtype == torch.float32,
        num_warps=tiles.num_warps, num_stages=tiles.num_stages,
    )  # fmt: skip
    return c


def grouped_wgrad(
    g: torch.Tensor,
    g_row_div: int,
    x: torch.Tensor,
    x_row_div: int,
    dispatch: Dispatch,
    num_experts: int,
    tiles: TileConfig,
    slot_weights: torch.Tensor | None = None,
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """dW[e] = sum over e's slots s of (w_s * G[s // g_row_div])^T X[s // x_row_div]: [E, N, K]."""
    n_out, k_in = g.shape[1], x.shape[1]
    dw = torch.zeros(num_experts, n_out, k_in, dtype=out_dtype or x.dtype, device=x.device)
    if dispatch.num_padded_rows == 0:
        return dw
    grid = (num_experts, triton.cdiv(n_out, tiles.block_n) * triton.cdiv(k_in, tiles.block_k))
    grouped_wgrad_kernel[grid](
        g, x, dw, slot_weights if slot_weights is not None else dw,
        dispatch.sorted_slot_ids, dispatch.padded_offsets,
        n_out, k_in, dispatch.num_slots, g_row_div, x_row_div,
        g.stride(0), g.stride(1), x.stride(0), x.stride(1), dw.stride(0), dw.stride(1), dw.stride(2),
        BLOCK_M=tiles.block_m, BLOCK_N=tiles.block_n, BLOCK_K=tiles.block_k,
        MUL_SLOT_WEIGHT=slot_weights is not None, IEEE_FP32=x.dtype == torch.float32,
        num_warps=tiles.num_warps, num_stages=tiles.num_stages,
    )  # fmt: skip
    return dw


class TritonExperts(torch.autograd.Function):
    """Routed SwiGLU experts on the grouped GEMM, differentiable in x, w1, w2 and the weights."""

    @staticmethod
    def forward(ctx, x, w1, w2, topk_weights, dispatch: Dispatch, top_k: int, tiles: TileConfig):
        num_tokens, hidden = x.shape
        ffn = w2.shape[2]
        slot_w = topk_weights.reshape(-1).float().contiguous()
        act_NF = grouped_gemm(x, w1, dispatch, top_k, ffn, tiles, fuse_silu_mul=True)
        y_ND = grouped_gemm(act_NF, w2, dispatch, 1, hidden, tiles, slot_weights=slot_w)
        out_TD = y_ND.view(num_tokens, top_k, hidden).float().sum(dim=1).to(x.dtype)
        ctx.save_for_backward(x, w1, w2, slot_w)
        ctx.dispatch, ctx.top_k, ctx.tiles = dispatch, top_k, tiles
        ctx.weights_dtype = topk_weights.dtype
        return out_TD

    @staticmethod
    def backward(ctx, dout_TD):
        x, w1, w2, slot_w = ctx.saved_tensors
        dispatch, top_k, tiles = ctx.dispatch, ctx.top_k, ctx.tiles
        num_tokens, hidden = x.shape
        num_experts, ffn = w2.shape[0], w2.shape[2]
        dout_TD = dout_TD.contiguous().to(x.dtype)

        # Recompute the gate/up pre-activations and the SwiGLU output, in fp32.
        h1 = grouped_gemm(x, w1, dispatch, top_k, 2 * ffn, tiles).float()
        gate, up = h1[:, :ffn], h1[:, ffn:]
        sig = torch.sigmoid(gate)
        silu = gate * sig
        act = silu * up

        d_act_unweighted = grouped_gemm(dout_TD, w2.transpose(1, 2), dispatch, top_k, ffn, tiles).float()
        d_weights = (d_act_unweighted * act).sum(dim=-1)  # dL/dp_s; 0 for dropped slots
        d_act = d_act_unweighted * slot_w[:, None]
        d_gate = d_act * up * sig * (1 + gate * (1 - sig))
        d_up = d_act * silu
        d_h1 = torch.cat([d_gate, d_up], dim=-1).to(x.dtype)

        dx = dw1 = dw2 = None
        if ctx.needs_input_grad[0]:
            dx_slots = grouped_gemm(d_h1, w1.transpose(1, 2), dispatch, 1, hidden, tiles)
            dx = dx_slots.view(num_tokens, top_k, hidden).float().sum(dim=1).to(x.dtype)
        if ctx.needs_input_grad[1]:
            dw1 = grouped_wgrad(d_h1, 1, x, top_k, dispatch, num_experts, tiles, out_dtype=w1.dtype)
        if ctx.needs_input_grad[2]:
            dw2 = grouped_wgrad(
                dout_TD, top_k, act.to(x.dtype), 1, dispatch, num_experts, tiles, slot_w, out_dtype=w2.dtype
            )
        d_topk = d_weights.view(num_tokens, top_k).to(ctx.weights_dtype)
        return dx, dw1, dw2, d_topk, None, None, None


def triton_experts(
    x: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    topk_weights: torch.Tensor,
    topk_ids: torch.Tensor,
    tiles: TileConfig,
) -> torch.Tensor:
    """Routed experts through the Triton path; slots with expert id -1 are skipped."""
    dispatch = align_block_size(topk_ids, w1.shape[0], tiles.block_m)
    return TritonExperts.apply(x, w1, w2, topk_weights, dispatch, topk_ids.shape[1], tiles)


class GroupedGemm(torch.autograd.Function):
    """C[s] = A[s // a_row_div] @ B[e(s)]^T as a differentiable op, for experts the fused path
    does not cover (biases, other activations, weight on the input): torch does the elementwise
    parts between two of these, and autograd chains them.

        dA[r] = sum over slots s of row r of dC[s] @ B[e(s)]      (grouped GEMM with B transposed)
        dB[e] = sum over e's slots of dC[s]^T A[s // a_row_div]    (segment reduction)
    """

    @staticmethod
    def forward(ctx, a, b, dispatch: Dispatch, a_row_div: int, tiles: TileConfig):
        ctx.save_for_backward(a, b)
        ctx.dispatch, ctx.a_row_div, ctx.tiles = dispatch, a_row_div, tiles
        return grouped_gemm(a, b, dispatch, a_row_div, b.shape[1], tiles)

    @staticmethod
    def backward(ctx, dc):
        a, b = ctx.saved_tensors
        dispatch, div, tiles = ctx.dispatch, ctx.a_row_div, ctx.tiles
        dc = dc.contiguous().to(a.dtype)
        da = db = None
        if ctx.needs_input_grad[0]:
            da_slots = grouped_gemm(dc, b.transpose(1, 2), dispatch, 1, a.shape[1], tiles)
            da = da_slots.view(-1, div, a.shape[1]).float().sum(dim=1).to(a.dtype) if div > 1 else da_slots
        if ctx.needs_input_grad[1]:
            db = grouped_wgrad(dc, 1, a, div, dispatch, b.shape[0], tiles, out_dtype=b.dtype)
        return da, db, None, None, None


def triton_experts_general(x, w1, w2, topk_weights, topk_ids, act, b1, b2, weight_on_input, tiles):
    """Any expert on the grouped GEMM: GEMM -> (bias, activation in torch) -> GEMM -> combine."""
    num_tokens, hidden = x.shape
    top_k = topk_ids.shape[1]
    dispatch = align_block_size(topk_ids, w1.shape[0], tiles.block_m)
    valid_N = (topk_ids >= 0).reshape(-1, 1).to(x.dtype)  # 0 for dropped slots
    expert_N = topk_ids.reshape(-1).clamp(min=0)
    weights_N1 = topk_weights.reshape(-1, 1).to(x.dtype) * valid_N
    if weight_on_input:
        h_NH = GroupedGemm.apply(x.repeat_interleave(top_k, dim=0) * weights_N1, w1, dispatch, 1, tiles)
    else:
        h_NH = GroupedGemm.apply(x, w1, dispatch, top_k, tiles)
    if b1 is not None:
        h_NH = h_NH + b1[expert_N] * valid_N
    y_ND = GroupedGemm.apply(act(h_NH).contiguous(), w2, dispatch, 1, tiles)
    if b2 is not None:
        y_ND = y_ND + b2[expert_N] * valid_N
    if not weight_on_input:
        y_ND = y_ND * weights_N1
    return y_ND.view(num_tokens, top_k, hidden).float().sum(dim=1).to(x.dtype)


_TUNED: dict[tuple, TileConfig] = {}


def tuned_tiles(x, w1, w2, topk_weights, topk_ids) -> TileConfig:
    """Autotune: time each candidate of the shape class once per shape key, keep the fastest.

    The key buckets T to the next power of two (as vLLM's tuned configs do) so a decode loop
    with T = 1, 2, 3... does not retune every step.
    """
    from triton.testing import do_bench

    from moe_core.kernels.tiles import candidate_tiles

    num_tokens = x.shape[0]
    bucket = 1 << max(0, (num_tokens - 1).bit_length())
    key = (bucket, x.shape[1], w2.shape[2], w1.shape[0], topk_ids.shape[1], x.dtype)
    if key not in _TUNED:
        timings = {}
        with torch.no_grad():
            for tiles in candidate_tiles(num_tokens):
                run = lambda t=tiles: triton_experts(x, w1, w2, topk_weights, topk_ids, t)
                try:
                    timings[tiles] = do_bench(run, warmup=5, rep=20, return_mode="median")
                except Exception:  # e.g. out of shared memory on a smaller GPU: skip the config
                    continue
        if not timings:
            raise RuntimeError(f"no tile config could run for shape key {key}")
        _TUNED[key] = min(timings, key=timings.get)
    return _TUNED[key]
