"""Torch reference paths for the routed experts, kept beside the Triton kernel.

Both compute, for every token t and each of its K choices (expert e, weight p):

    out[t] = sum_k  p_tk * w2_e @ (silu(gate_e @ x_t) * (up_e @ x_t))      (the Mixtral expert)

with w1 [E, 2F, D] (rows 0:F gate, F:2F up) and w2 [E, D, F]. Slots whose expert id is outside
0..E-1 (dropped by a capacity limit) contribute nothing.

* `experts_loop` — Hugging Face style: one Python iteration per expert, gather its tokens, two
  matmuls, scatter-add back. Obvious, and slow when E is large (E small launches, E gathers).
* `experts_sorted` — the production layout in plain torch: sort slots by expert once, run each
  expert's matmul on a contiguous segment, un-permute. The Triton kernel does the same in one
  launch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _swiglu(x_MD: torch.Tensor, w1_2FD: torch.Tensor) -> torch.Tensor:
    gate_MF, up_MF = F.linear(x_MD, w1_2FD).chunk(2, dim=-1)
    return F.silu(gate_MF) * up_MF


def experts_loop(
    x_TD: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, topk_weights: torch.Tensor, topk_ids: torch.Tensor
) -> torch.Tensor:
    """Per-expert loop (transformers' MixtralExperts). Returns [T, D] in x's dtype."""
    out_TD = torch.zeros_like(x_TD)
    for expert in range(w1.shape[0]):
        token_idx, k_idx = torch.where(topk_ids == expert)
        if token_idx.numel() == 0:
            continue
        y_MD = F.linear(_swiglu(x_TD[token_idx], w1[expert]), w2[expert])
        y_MD = y_MD * topk_weights[token_idx, k_idx, None].to(y_MD.dtype)
        out_TD = out_TD.index_add(0, token_idx, y_MD.to(out_TD.dtype))
    return out_TD


def experts_sorted(
    x_TD: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, topk_weights: torch.Tensor, topk_ids: torch.Tensor
) -> torch.Tensor:
    """Sort slots by expert, one matmul per contiguous segment, weighted scatter-add back."""
    # Imported here: dispatch imports nothing of ours, but keeping the edge local documents
    # that this path is the one that shares its layout with the kernel.
    from moe_core.dispatch import sort_by_expert

    top_k = topk_ids.shape[1]
    sorted_slots_N, counts_E = sort_by_expert(topk_ids, w1.shape[0])
    token_of_slot = sorted_slots_N // top_k
    x_sorted_MD = x_TD[token_of_slot]  # gather once: [N_kept, D], grouped by expert
    segments = torch.split(x_sorted_MD, counts_E.tolist())
    y_sorted_MD = torch.cat(
        [F.linear(_swiglu(seg, w1[e]), w2[e]) for e, seg in enumerate(segments) if seg.shape[0]]
        or [x_TD.new_zeros(0, w2.shape[1])]
    )
    weights_N = topk_weights.reshape(-1)[sorted_slots_N].to(y_sorted_MD.dtype)
    out_TD = torch.zeros_like(x_TD)
    return out_TD.index_add(0, token_of_slot, (y_sorted_MD * weights_N[:, None]).to(x_TD.dtype))
