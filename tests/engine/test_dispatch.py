"""Dispatch bookkeeping: sorted segments, block padding, capacity and drops."""

from __future__ import annotations

import pytest
import torch

from moe_core import align_block_size, apply_capacity, sort_by_expert
from moe_core.dispatch import expert_capacity


def test_docstring_example_worked_by_hand():
    ids = torch.tensor([[0, 2], [2, 0], [2, 1]])
    d = align_block_size(ids, num_experts=3, block_size=4)
    pad = 6  # N = T*K is the padding sentinel
    assert d.sorted_slot_ids.tolist() == [0, 3, pad, pad, 5, pad, pad, pad, 1, 2, 4, pad]
    assert d.block_expert_ids.tolist() == [0, 1, 2]
    assert d.padded_offsets.tolist() == [0, 4, 8, 12]
    assert d.tokens_per_expert.tolist() == [2, 1, 3]
    assert d.num_padding_rows == 6


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("block_size", [1, 4, 16])
def test_every_slot_once_in_its_experts_block(seed, block_size):
    g = torch.Generator().manual_seed(seed)
    num_tokens, top_k, num_experts = 41, 2, 7
    ids = torch.stack([torch.randperm(num_experts, generator=g)[:top_k] for _ in range(num_tokens)])
    ids[ids == 3] = 5  # expert 3 gets nothing
    d = align_block_size(ids, num_experts, block_size)
    rows = d.sorted_slot_ids
    real = rows[rows < ids.numel()]
    assert sorted(real.tolist()) == list(range(ids.numel()))  # each slot exactly once
    assert d.num_padded_rows % block_size == 0
    expert_of_row = d.block_expert_ids.repeat_interleave(block_size)
    assert torch.equal(ids.reshape(-1)[real], expert_of_row[rows < ids.numel()])
    # Segments are padded to the next multiple of the block, empty experts get no block.
    counts = torch.bincount(ids.reshape(-1), minlength=num_experts)
    expected_blocks = (counts + block_size - 1) // block_size
    assert torch.equal(torch.bincount(d.block_expert_ids, minlength=num_experts), expected_blocks)
    assert 3 not in d.block_expert_ids.tolist()


def test_sort_skips_dropped_slots_and_keeps_token_order():
    ids = torch.tensor([[1, -1], [0, 1], [1, 0]])
    slots, counts = sort_by_expert(ids, 2)
    assert slots.tolist() == [2, 5, 0, 3, 4]
    assert counts.tolist() == [2, 3]


def test_capacity_by_hand():
    # E=2, T=4, K=1, CF=1 -> C = ceil(4/2) = 2. Expert 0 is chosen by tokens 0,1,2: token 2 is dropped.
    ids = torch.tensor([[0], [0], [0], [1]])
    res = apply_capacity(ids, 2, capacity_factor=1.0)
    assert res.capacity == 2
    assert res.keep.flatten().tolist() == [True, True, False, True]
    assert res.num_dropped == 1 and res.drop_rate == pytest.approx(0.25)


def test_capacity_drops_second_choices_before_first_choices():
    # Token 0 picks expert 0 second; tokens 1 and 2 pick it first. C = ceil(0.5*3*2/2) = 2.
    ids = torch.tensor([[1, 0], [0, 1], [0, 1]])
    res = apply_capacity(ids, 2, capacity_factor=0.5)
    assert res.capacity == 2
    assert res.keep.tolist() == [[True, False], [True, True], [True, False]]


@pytest.mark.parametrize("cf", [0.25, 0.5, 1.0, 1.25, 2.0])
def test_drop_count_matches_overflow_formula(cf):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 6, (100, 2), generator=g)
    ids[:, 1] = (ids[:, 0] + 1 + torch.randint(0, 5, (100,), generator=g)) % 6  # distinct per token
    res = apply_capacity(ids, 6, cf)
    cap = expert_capacity(100, 2, 6, cf)
    counts = torch.bincount(ids.reshape(-1), minlength=6)
    assert res.num_dropped == int((counts - cap).clamp_min(0).sum())
    kept = torch.bincount(ids[res.keep], minlength=6)
    assert int(kept.max()) <= cap
