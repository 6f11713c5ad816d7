"""Synthetic multi-domain regression data for Lesson 4 (load balancing and collapse).

Each token is a vector x [D] drawn from one of M "domains" (think: code, maths, French...), and the
task is to predict y [D] = W_m x, where every domain's map is its own random map plus one map all
domains share:

    x = c_m + noise + SHIFT * u          u: one unit vector every token shares
    y = scale * (A_m + SHARED * S) x      A_m: domain m's map, S: the shared map

(`scale` makes the targets unit-variance per coordinate, so losses read the same whatever the
constants, and the Switch coefficient α is compared against a task gradient of a known size.)

Why the shared parts: collapse is rich-get-richer on what all tokens have in common
(shared/DESIGN.md, "Measured: what makes a tiny MoE collapse honestly"). The shared shift u gives
every token a common direction the router can key on, and the shared map S is a skill every expert
can learn. Whichever expert learns S first lowers every token's loss a little, so the router's
gradient pushes *all* tokens towards it; it then trains on more tokens, learns faster, and wins.
The domain centres c_m make specialisation visible: a balanced router can send each domain to its
own expert (the lesson's domain × expert heatmap).

Nothing is downloaded: the task is a pure function of its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SHIFT = 3.0  # length of the shared input shift u (measured: 3 collapses 10/10 seeds unbalanced)
SHARED = 2.0  # weight of the shared map S in every domain's target map
CENTRE = 1.0  # length scale of the domain centres c_m (per coordinate std)
NOISE = 1.0  # per-coordinate std of the token noise


@dataclass(frozen=True)
class DomainTask:
    """The fixed part of the task: domain centres and maps, the shared shift and map."""

    centres: torch.Tensor  # [M, D] domain centre c_m
    maps: torch.Tensor  # [M, D, D] full target map of each domain, A_m + SHARED * S
    shift: torch.Tensor  # [D] SHIFT * u

    @property
    def num_domains(self) -> int:
        return self.centres.shape[0]

    @property
    def dim(self) -> int:
        return self.centres.shape[1]


@dataclass
class Batch:
    x: torch.Tensor  # [T, D] inputs
    y: torch.Tensor  # [T, D] targets
    domain: torch.Tensor  # [T] int64 domain label of each token


def make_task(num_domains: int = 8, dim: int = 32, seed: int = 0) -> DomainTask:
    """Draw a task deterministically from `seed` (CPU generator, float32)."""
    if num_domains < 1 or dim < 1:
        raise ValueError(f"num_domains and dim must be positive, got {num_domains} and {dim}")
    g = torch.Generator().manual_seed(seed)
    centres = CENTRE * torch.randn(num_domains, dim, generator=g)
    unit = torch.randn(dim, generator=g)
    unit = unit / unit.norm()
    # Entries of variance 1/D, so E|A x|^2 = E|x|^2 = D (CENTRE^2 + NOISE^2) + SHIFT^2 ...
    own = torch.randn(num_domains, dim, dim, generator=g) / math.sqrt(dim)
    shared = torch.randn(dim, dim, generator=g) / math.sqrt(dim)
    # ... and this scale brings E[y_i^2] to 1 (about 0.3 for the default constants).
    x_sq = dim * (CENTRE**2 + NOISE**2) + SHIFT**2
    scale = 1 / math.sqrt((1 + SHARED**2) * x_sq / dim)
    return DomainTask(centres=centres, maps=scale * (own + SHARED * shared), shift=SHIFT * unit)


def sample_batch(task: DomainTask, batch_size: int, generator: torch.Generator) -> Batch:
    """`batch_size` tokens with uniformly random domains, drawn from `generator`."""
    domain = torch.randint(task.num_domains, (batch_size,), generator=generator)
    noise = NOISE * torch.randn(batch_size, task.dim, generator=generator)
    x = task.centres[domain] + noise + task.shift
    # y_t = W_{m(t)} x_t. Applying all M maps to every token and keeping one is a single matmul,
    # far faster on a CPU than gathering a [T, D, D] stack of per-token maps.
    all_maps_MTD = torch.matmul(x, task.maps.transpose(1, 2))  # [M, T, D]
    y = all_maps_MTD[domain, torch.arange(batch_size)]
    return Batch(x=x, y=y, domain=domain)
