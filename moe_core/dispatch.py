"""Dispatch: turn per-token expert choices into contiguous, block-aligned expert segments.

A grouped GEMM wants every expert's rows next to each other, and — so that one M-block of the
kernel touches exactly one expert's weights — each segment padded to a multiple of the block
size. This is what vLLM's `moe_align_block_size` computes on the GPU; here it is plain torch so
the lessons can draw it.

Slots: token t's k-th choice is slot s = t*K + k (N = T*K slots). Example, E = 3, block = 4:

    topk_ids (T=3, K=2) = [[0, 2], [2, 0], [2, 1]]  ->  slots 0..5 go to experts 0,2,2,0,2,1
    segments:  expert 0: slots 0,3     -> padded to 4 rows: 0 3 P P
               expert 1: slot 5        ->                   5 P P P
               expert 2: slots 1,2,4   ->                   1 2 4 P
    sorted_slot_ids = [0,3,P,P, 5,P,P,P, 1,2,4,P]  (P = N, an out-of-range "padding" slot)
    block_expert_ids = [0, 1, 2],  padded_offsets = [0, 4, 8, 12]

Capacity (GShard / Switch): an expert takes at most C = ceil(capacity_factor * T * K / E) slots;
the rest are dropped (their tokens skip that expert; a residual connection carries them on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class Dispatch:
    """Block-aligned sorted layout of routed slots (names follow the shape legend)."""

    sorted_slot_ids: torch.Tensor  # [N_pad] int64 slot per row; padding rows hold num_slots
    block_expert_ids: torch.Tensor  # [N_pad / block_size] int64 expert of each M-block
    padded_offsets: torch.Tensor  # [E + 1] int64 start row of each expert's padded segment
    tokens_per_expert: torch.Tensor  # [E] int64 slots routed (and kept) per expert
    num_slots: int  # N = T*K; also the padding sentinel
    block_size: int

    @property
    def num_padded_rows(self) -> int:
        return int(self.sorted_slot_ids.numel())

    @property
    def num_padding_rows(self) -> int:
        return self.num_padded_rows - int(self.tokens_per_expert.sum())


def sort_by_expert(topk_ids: torch.Tensor, num_experts: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Slot ids sorted by expert (stable: token order kept inside a segment) and counts [E].

    Slots whose expert id lies outside 0..E-1 (dropped slots, marked -1) are left out.
    """
    expert_of_slot_N = topk_ids.reshape(-1).long()
    valid_N = (expert_of_slot_N >= 0) & (expert_of_slot_N < num_experts)
    valid_slots = torch.nonzero(valid_N).flatten()
    order = torch.argsort(expert_of_slot_N[valid_slots], stable=True)
    sorted_slots = valid_slots[order]
    counts_E = torch.bincount(expert_of_slot_N[valid_slots], minlength=num_experts)
    return sorted_slots, counts_E


def align_block_size(topk_ids: torch.Tensor, num_experts: int, block_size: int) -> Dispatch:
    """Sorted, block-padded layout for the grouped GEMM (vLLM's `moe_align_block_size`)."""
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    device = topk_ids.device
    num_slots = topk_ids.numel()
    sorted_slots, counts_E = sort_by_expert(topk_ids, num_experts)
    padded_counts_E = (counts_E + block_size - 1) // block_size * block_size
    padded_offsets = torch.zeros(num_experts + 1, dtype=torch.long, device=device)
    padded_offsets[1:] = torch.cumsum(padded_counts_E, 0)
    offsets = torch.zeros_like(padded_offsets)
    offsets[1:] = torch.cumsum(counts_E, 0)

    # Row of each sorted slot = its expert's padded start + its rank inside the segment.
    expert_of_sorted = torch.repeat_interleave(torch.arange(num_experts, device=device), counts_E)
    rank_in_segment = torch.arange(sorted_slots.numel(), device=device) - offsets[expert_of_sorted]
    rows = padded_offsets[expert_of_sorted] + rank_in_segment
    sorted_slot_ids = torch.full((int(padded_offsets[-1]),), num_slots, dtype=torch.long, device=device)
    sorted_slot_ids[rows] = sorted_slots
    block_expert_ids = torch.repeat_interleave(
        torch.arange(num_experts, device=device), padded_counts_E // block_size
    )
    return Dispatch(sorted_slot_ids, block_expert_ids, padded_offsets, counts_E, num_slots, block_size)


@dataclass
class CapacityResult:
    keep: torch.Tensor  # [T, K] bool, False where the slot was dropped
    capacity: int  # C, slots per expert
    num_dropped: int

    @property
    def drop_rate(self) -> float:
        return self.num_dropped / max(1, self.keep.numel())


def expert_capacity(num_tokens: int, top_k: int, num_experts: int, capacity_factor: float) -> int:
    """C = ceil(capacity_factor * T * K / E) (Switch Transformer eq. 4, GShard)."""
    return math.ceil(capacity_factor * num_tokens * top_k / num_experts)


def _keep_by_priority(topk_ids: torch.Tensor, num_experts: int, capacity: int) -> torch.Tensor:
    """[T, K] bool: every token's first choice before any token's second, then token order."""
    num_tokens, top_k = topk_ids.shape
    by_priority = topk_ids.t().reshape(-1)  # [K*T]: all k=0 choices first, in token order
    order = torch.argsort(by_priority, stable=True)
    counts_E = torch.bincount(by_priority, minlength=num_experts)
    starts_E = torch.cumsum(counts_E, 0) - counts_E
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), device=order.device) - starts_E[by_priority[order]]
    return (rank < capacity).reshape(top_k, num_tokens).t().contiguous()


def apply_capacity(topk_ids: torch.Tensor, num_experts: int, capacity_factor: float) -> CapacityResult:
    """Which slots an expert keeps when it can take only C of them.

    Priority: every token's first choice before any token's second choice, then token order
    (GShard's rule), so a capacity limit costs tokens their weaker experts first.
    """
    num_tokens, top_k = topk_ids.shape
    capacity = expert_capacity(num_tokens, top_k, num_experts, capacity_factor)
    keep = _keep_by_priority(topk_ids, num_experts, capacity)
    return CapacityResult(keep, capacity, int((~keep).sum()))


def apply_expert_capacity(
    topk_ids: torch.Tensor, num_experts: int, capacity: int, num_groups: int = 1
) -> CapacityResult:
    """A fixed capacity C per expert, counted separately in each of `num_groups` equal runs of tokens.

    Switch Transformers (transformers' `SwitchTransformersTop1Router`) sets `expert_capacity` in its
    config and counts it per sequence: give [B*T, K] ids and num_groups = B. Same priority rule.
    """
    num_tokens = topk_ids.shape[0]
    if num_groups < 1 or num_tokens % num_groups:
        raise ValueError(f"num_groups ({num_groups}) must divide the number of tokens ({num_tokens})")
    # Expert e of group g becomes expert g*E + e: one pass ranks every group separately.
    group_T1 = (torch.arange(num_tokens, device=topk_ids.device) // (num_tokens // num_groups))[:, None]
    keep = _keep_by_priority(topk_ids + group_T1 * num_experts, num_experts * num_groups, capacity)
    return CapacityResult(keep, capacity, int((~keep).sum()))
