"""Lesson 4's synthetic data: deterministic, the targets it promises, and the shared parts.

The expected targets are recomputed here token by token from the task's maps (a slow, obvious
loop), not with the batched matmul `sample_batch` uses.
"""

from __future__ import annotations

import pytest
import torch

from moe_core.data import SHIFT, make_task, sample_batch

pytestmark = pytest.mark.engine


def test_task_is_a_function_of_its_seed() -> None:
    a, b, c = make_task(seed=3), make_task(seed=3), make_task(seed=4)
    for name in ("centres", "maps", "shift"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=0)
    assert not torch.equal(a.maps, c.maps)
    assert a.centres.shape == (8, 32) and a.maps.shape == (8, 32, 32) and a.shift.shape == (32,)


def test_batch_targets_are_each_domains_linear_map() -> None:
    task = make_task(num_domains=5, dim=12, seed=1)
    batch = sample_batch(task, 40, torch.Generator().manual_seed(0))
    assert batch.x.shape == (40, 12) and batch.y.shape == (40, 12) and batch.domain.shape == (40,)
    assert int(batch.domain.min()) >= 0 and int(batch.domain.max()) < 5
    for t in range(40):
        expected = task.maps[batch.domain[t]] @ batch.x[t]
        # float32 matmul in another order: agreement to rounding, not bit for bit.
        torch.testing.assert_close(batch.y[t], expected, rtol=1e-5, atol=1e-5)


def test_same_generator_state_gives_the_same_batch() -> None:
    task = make_task(seed=0)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    b1, b2 = sample_batch(task, 64, g1), sample_batch(task, 64, g2)
    assert torch.equal(b1.x, b2.x) and torch.equal(b1.y, b2.y) and torch.equal(b1.domain, b2.domain)
    assert not torch.equal(sample_batch(task, 64, g1).x, b1.x)  # the generator moved on


def test_every_token_shares_the_shift_and_every_target_the_shared_map() -> None:
    task = make_task(seed=2)
    assert float(task.shift.norm()) == pytest.approx(SHIFT, rel=1e-5)
    batch = sample_batch(task, 8192, torch.Generator().manual_seed(1))
    # The mean input is the shift plus the mean domain centre; its component along u is SHIFT + small.
    u = task.shift / task.shift.norm()
    along = float(batch.x.mean(0) @ u)
    assert along == pytest.approx(SHIFT + float(task.centres.mean(0) @ u), abs=0.1)
    # Maps = own + 2·S: the mean map holds most of each map's energy (4/5 expected, 1/5 own).
    mean_map = task.maps.mean(0)
    shared_fraction = float(mean_map.square().sum() / task.maps.square().sum(dim=(1, 2)).mean())
    assert 0.7 < shared_fraction < 0.9


def test_targets_are_about_unit_variance() -> None:
    msq = [
        float(sample_batch(make_task(seed=s), 4096, torch.Generator().manual_seed(s)).y.square().mean())
        for s in range(5)
    ]
    assert 0.6 < sum(msq) / len(msq) < 1.4, msq
