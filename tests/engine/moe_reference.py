"""An independent, dense reference for the MoE formula, written without moe_core.

Every expert is applied to every token (einsum), then a dense [T, E] weight matrix built from the
routing keeps only the chosen experts. Nothing here shares code with the engine's sorted or
kernel paths, so agreement is evidence, not tautology.
"""

from __future__ import annotations

import torch


def route(logits: torch.Tensor, top_k: int, renormalize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    probs = torch.softmax(logits.double(), dim=-1)
    weights, ids = torch.topk(probs, top_k, dim=-1)
    if renormalize:
        weights = weights / weights.sum(-1, keepdim=True)
    return weights, ids


def dense_moe(x, w1, w2, topk_weights, topk_ids, keep=None) -> torch.Tensor:
    """float64 reference; `keep` [T, K] bool drops slots (capacity)."""
    x, w1, w2 = x.double(), w1.double(), w2.double()
    ffn = w2.shape[2]
    h = torch.einsum("td,efd->tef", x, w1)
    act = torch.nn.functional.silu(h[..., :ffn]) * h[..., ffn:]
    y = torch.einsum("tef,edf->ted", act, w2)  # every expert on every token
    dense_w = torch.zeros(x.shape[0], w1.shape[0], dtype=torch.float64)
    w = topk_weights.double() if keep is None else topk_weights.double() * keep
    dense_w.scatter_add_(1, topk_ids, w)
    return torch.einsum("te,ted->td", dense_w, y)
