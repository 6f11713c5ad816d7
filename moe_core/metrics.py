"""Load metrics shared by the lessons, the trainer and the benchmarks.

load_e = share of routed slots (T*K) that went to expert e (balanced: 1/E). MaxVio is DeepSeek's
max_e load_e * E - 1 (0 when balanced, E - 1 when one expert takes all). An expert is "dead"
when it gets under a tenth of its fair share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

DEAD_FRACTION = 0.1  # of the fair share 1/E


def expert_counts(topk_ids: torch.Tensor, num_experts: int) -> torch.Tensor:
    """Routed slots per expert [E] (ids outside 0..E-1, i.e. dropped slots, are not counted)."""
    ids = topk_ids.reshape(-1).long()
    ids = ids[(ids >= 0) & (ids < num_experts)]
    return torch.bincount(ids, minlength=num_experts)


def load_shares(counts: torch.Tensor) -> torch.Tensor:
    """Share of slots per expert; sums to 1 (uniform when there are no slots)."""
    counts = counts.double()
    total = counts.sum()
    if total == 0:
        return torch.full_like(counts, 1.0 / counts.numel())
    return counts / total


@dataclass(frozen=True)
class LoadStats:
    load: list[float]  # per-expert share, sums to 1
    max_load: float
    max_vio: float
    cv: float
    entropy: float  # of the load distribution, normalised to [0, 1] by log E
    dead_experts: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def load_stats(counts: torch.Tensor) -> LoadStats:
    """All load metrics from per-expert slot counts [E]."""
    num_experts = counts.numel()
    load = load_shares(counts)
    mean = counts.double().mean()
    # Population std (ddof=0): the experts are the whole population, not a sample.
    cv = float(counts.double().std(unbiased=False) / mean) if mean > 0 else 0.0
    nz = load[load > 0]
    entropy = float(-(nz * nz.log()).sum() / math.log(num_experts)) if num_experts > 1 else 1.0
    return LoadStats(
        load=[float(v) for v in load],
        max_load=float(load.max()),
        max_vio=float(load.max() * num_experts - 1),
        cv=cv,
        entropy=entropy,
        dead_experts=int((load < DEAD_FRACTION / num_experts).sum()),
    )


def token_entropy(router_probs: torch.Tensor) -> float:
    """Mean per-token entropy of the router's distribution, in nats (low = confident router)."""
    p = router_probs.double().clamp_min(1e-12)
    return float(-(p * p.log()).sum(dim=-1).mean())


def drop_rate(num_dropped: int, num_slots: int) -> float:
    return num_dropped / num_slots if num_slots else 0.0
