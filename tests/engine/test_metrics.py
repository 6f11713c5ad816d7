"""Load metrics against hand counts and numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from moe_core.metrics import drop_rate, expert_counts, load_stats, token_entropy


def test_all_on_one_expert():
    s = load_stats(torch.tensor([12, 0, 0, 0]))
    assert s.load == [1.0, 0.0, 0.0, 0.0]
    assert s.max_vio == pytest.approx(3.0)
    assert s.dead_experts == 3
    assert s.entropy == pytest.approx(0.0)


def test_uniform_load():
    s = load_stats(torch.tensor([5, 5, 5, 5, 5]))
    assert s.max_vio == pytest.approx(0.0) and s.cv == pytest.approx(0.0)
    assert s.entropy == pytest.approx(1.0) and s.dead_experts == 0


def test_cv_and_dead_threshold_vs_numpy():
    counts = np.array([40, 30, 20, 9, 1, 0, 0, 0])
    s = load_stats(torch.tensor(counts))
    assert s.cv == pytest.approx(counts.std() / counts.mean())
    # fair share 1/8 = 0.125; dead below 0.0125: loads 1/100 and the zeros.
    assert s.dead_experts == 4
    assert sum(s.load) == pytest.approx(1.0)


def test_expert_counts_ignores_dropped_and_entropy():
    assert expert_counts(torch.tensor([[0, -1], [2, 0]]), 3).tolist() == [2, 0, 1]
    probs = torch.full((3, 4), 0.25)
    assert token_entropy(probs) == pytest.approx(math.log(4))
    assert drop_rate(3, 12) == 0.25 and drop_rate(0, 0) == 0.0
