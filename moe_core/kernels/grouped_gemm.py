"""
Grouped GEMM over expert segments — the kernel at the heart of a sparse MoE layer
================================================================================

Motivation
----------
After routing, expert e must multiply the rows of the tokens that chose it by its own weights.
A per-expert loop launches 2·E small matmuls; most of them are too small to fill a GPU, and
experts with no tokens still cost a launch. Production MoE (vLLM's `fused_moe`, SGLang,
Megablocks) instead sorts the routed slots by expert, pads each expert's segment to a multiple of
BLOCK_M (see `moe_core.dispatch`), and runs *one* kernel whose every M-block looks up which expert
it belongs to. That lookup is the whole trick:

    for each program (pid_m, pid_n):                 # one BLOCK_M x BLOCK_N tile of the output
        expert = block_expert_ids[pid_m]             # <- segment lookup: one expert per M-block
        slots  = sorted_slot_ids[pid_m*BLOCK_M : ...] # which routed slots these rows are
        rows   = slots // A_ROW_DIV                   # slot -> token row of A (x is shared by K slots)
        acc    = sum over K-chunks of A[rows, k] @ B[expert, n, k]^T     # fp32 accumulation
        (epilogue: SiLU(gate) * up, and/or x routing weight)
        C[slots, n] = acc                            # scatter to slot order: no un-permute needed

A second kernel, `grouped_wgrad_kernel`, computes weight gradients: for each expert e,
dW[e] = sum over its slots of G[slot]^T X[slot] — a reduction over the segment, used by backward.

Edges are masked everywhere: padding rows (slot == num_slots), ragged N and K, experts with zero
tokens (they own no M-block, and their weight-gradient tile is written as zeros). Offsets are
computed in int64 so T*K*D may pass 2^31.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def grouped_gemm_kernel(
    # Pointers to matrices
    a_ptr,  # A [rows, K_IN]: x (rows = tokens) or an intermediate (rows = slots)
    b_ptr,  # B [E, N_OUT (or 2*N_OUT when fused), K_IN], read through strides (may be a transposed view)
    c_ptr,  # C [num_slots, N_OUT], written in slot order
    slot_weights_ptr,  # [num_slots] routing weight per slot (read only if MUL_SLOT_WEIGHT)
    sorted_slot_ids_ptr,  # [num_padded_rows] slot per sorted row; padding rows hold num_slots
    block_expert_ids_ptr,  # [num_padded_rows / BLOCK_M] expert of each M-block
    # Matrix dimensions
    N_OUT,
    K_IN,
    num_slots,
    num_padded_rows,
    A_ROW_DIV,  # slot -> row of A: top_k when A is x (one row per token), 1 when A is per slot
    # Strides: how far to step in memory for +1 along each dimension
    stride_am,
    stride_ak,
    stride_be,
    stride_bn,
    stride_bk,
    stride_cm,
    stride_cn,
    # Meta-parameters
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
    FUSE_SILU_MUL: tl.constexpr,  # B holds [gate; up]; C = silu(A@gate^T) * (A@up^T)
    MUL_SLOT_WEIGHT: tl.constexpr,  # C *= routing weight of the slot
    IEEE_FP32: tl.constexpr,  # fp32 inputs: exact fp32 products instead of TF32
):
    # -----------------------------------------------------------
    # Map the program id to the tile of C it computes. Programs are grouped along M (as in the
    # Triton matmul tutorial) so consecutive programs reuse the same B tiles from L2.
    pid = tl.program_id(axis=0)
    num_pid_m = tl.cdiv(num_padded_rows, BLOCK_M)
    num_pid_n = tl.cdiv(N_OUT, BLOCK_N)
    num_pid_in_group = GROUP_M * num_pid_n
    group_id = pid // num_pid_in_group
    first_pid_m = group_id * GROUP_M
    group_size_m = min(num_pid_m - first_pid_m, GROUP_M)
    pid_m = first_pid_m + ((pid % num_pid_in_group) % group_size_m)
    pid_n = (pid % num_pid_in_group) // group_size_m

    # -----------------------------------------------------------
    # Segment lookup: which expert owns this M-block, and which routed slots are its rows.
    expert = tl.load(block_expert_ids_ptr + pid_m).to(tl.int64)
    offs_row = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    slots = tl.load(sorted_slot_ids_ptr + offs_row)
    slot_valid = slots < num_slots  # padding rows compute nothing and store nothing
    a_rows = (slots // A_ROW_DIV).to(tl.int64)  # int64: rows * stride may exceed 2^31

    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    n_valid = offs_n < N_OUT
    offs_k = tl.arange(0, BLOCK_K)
    a_ptrs = a_ptr + a_rows[:, None] * stride_am + offs_k[None, :] * stride_ak
    b_base = b_ptr + expert * stride_be + offs_k[:, None] * stride_bk
    b_ptrs = b_base + offs_n[None, :].to(tl.int64) * stride_bn
    if FUSE_SILU_MUL:
        b_up_ptrs = b_base + (offs_n[None, :] + N_OUT).to(tl.int64) * stride_bn

    # -----------------------------------------------------------
    # Iterate over K, accumulating in fp32 whatever the input dtype (bf16 products are exact in
    # fp32; summing thousands of them in bf16 would not be).
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    acc_up = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K_IN, BLOCK_K):
        k_valid = offs_k < K_IN - k0
        a = tl.load(a_ptrs, mask=slot_valid[:, None] & k_valid[None, :], other=0.0)
        b = tl.load(b_ptrs, mask=k_valid[:, None] & n_valid[None, :], other=0.0)
        if IEEE_FP32:
            acc = tl.dot(a, b, acc, input_precision="ieee")
        else:
            acc = tl.dot(a, b, acc)
        if FUSE_SILU_MUL:
            b_up = tl.load(b_up_ptrs, mask=k_valid[:, None] & n_valid[None, :], other=0.0)
            if IEEE_FP32:
                acc_up = tl.dot(a, b_up, acc_up, input_precision="ieee")
            else:
                acc_up = tl.dot(a, b_up, acc_up)
            b_up_ptrs += BLOCK_K * stride_bk
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk

    # -----------------------------------------------------------
    # Epilogue: SwiGLU activation and/or routing weight, still in fp32.
    if FUSE_SILU_MUL:
        acc = acc * tl.sigmoid(acc) * acc_up
    if MUL_SLOT_WEIGHT:
        w = tl.load(slot_weights_ptr + slots, mask=slot_valid, other=0.0)
        acc = acc * w[:, None].to(tl.float32)

    c_ptrs = c_ptr + slots[:, None].to(tl.int64) * stride_cm + offs_n[None, :].to(tl.int64) * stride_cn
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=slot_valid[:, None] & n_valid[None, :])


@triton.jit
def grouped_wgrad_kernel(
    # Pointers to matrices
    g_ptr,  # G [rows_g, N_OUT]: gradient w.r.t. the GEMM output
    x_ptr,  # X [rows_x, K_IN]: the GEMM's input
    dw_ptr,  # dW [E, N_OUT, K_IN]
    slot_weights_ptr,  # [num_slots], read only if MUL_SLOT_WEIGHT
    sorted_slot_ids_ptr,
    padded_offsets_ptr,  # [E + 1] start row of each expert's segment
    # Matrix dimensions
    N_OUT,
    K_IN,
    num_slots,
    G_ROW_DIV,
    X_ROW_DIV,
    # Strides
    stride_gm,
    stride_gn,
    stride_xm,
    stride_xk,
    stride_we,
    stride_wn,
    stride_wk,
    # Meta-parameters
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    MUL_SLOT_WEIGHT: tl.constexpr,
    IEEE_FP32: tl.constexpr,
):
    # One program = one (expert, N-tile, K-tile) of dW; it walks the expert's whole segment.
    expert = tl.program_id(axis=0)
    pid = tl.program_id(axis=1)
    num_pid_k = tl.cdiv(K_IN, BLOCK_K)
    pid_n = pid // num_pid_k
    pid_k = pid % num_pid_k
    seg_start = tl.load(padded_offsets_ptr + expert)
    seg_end = tl.load(padded_offsets_ptr + expert + 1)

    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    n_valid = offs_n < N_OUT
    k_valid = offs_k < K_IN
    acc = tl.zeros((BLOCK_N, BLOCK_K), dtype=tl.float32)
    # An expert with no tokens has seg_start == seg_end: the loop is empty and dW[e] = 0.
    for row0 in range(seg_start, seg_end, BLOCK_M):
        offs_row = row0 + tl.arange(0, BLOCK_M)
        slots = tl.load(sorted_slot_ids_ptr + offs_row, mask=offs_row < seg_end, other=num_slots)
        slot_valid = slots < num_slots
        g_rows = (slots // G_ROW_DIV).to(tl.int64)
        x_rows = (slots // X_ROW_DIV).to(tl.int64)
        g = tl.load(
            g_ptr + g_rows[:, None] * stride_gm + offs_n[None, :] * stride_gn,
            mask=slot_valid[:, None] & n_valid[None, :],
            other=0.0,
        )
        if MUL_SLOT_WEIGHT:
            w = tl.load(slot_weights_ptr + slots, mask=slot_valid, other=0.0)
            g = (g.to(tl.float32) * w[:, None].to(tl.float32)).to(g_ptr.dtype.element_ty)
        x = tl.load(
            x_ptr + x_rows[:, None] * stride_xm + offs_k[None, :] * stride_xk,
            mask=slot_valid[:, None] & k_valid[None, :],
            other=0.0,
        )
        if IEEE_FP32:
            acc = tl.dot(tl.trans(g), x, acc, input_precision="ieee")
        else:
            acc = tl.dot(tl.trans(g), x, acc)

    dw_ptrs = (
        dw_ptr
        + expert.to(tl.int64) * stride_we
        + offs_n[:, None].to(tl.int64) * stride_wn
        + offs_k[None, :].to(tl.int64) * stride_wk
    )
    tl.store(dw_ptrs, acc.to(dw_ptr.dtype.element_ty), mask=n_valid[:, None] & k_valid[None, :])
