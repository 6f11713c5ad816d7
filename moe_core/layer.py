"""`SparseMoE`: a complete MoE feed-forward layer, and everything the lessons need to draw it.

Forward pass, step by step (torchtitan's order):
    1. route     router_logits = gate(x); softmax (or sigmoid + bias) -> top-k ids and weights
    2. capacity  optionally drop the slots an over-full expert cannot take (ids set to -1)
    3. dispatch  sort slots by expert into block-aligned segments (inside the expert backend)
    4. experts   grouped SwiGLU GEMMs over the segments
    5. combine   weighted sum of each token's K expert outputs
    6. shared    add the always-on shared experts (DeepSeekMoE / Qwen-MoE), if any
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from moe_core.config import MoEConfig
from moe_core.dispatch import CapacityResult, apply_capacity
from moe_core.experts import SwiGLUExperts, SwiGLUMLP
from moe_core.metrics import expert_counts
from moe_core.router import TopKRouter


@dataclass
class MoEOutput:
    hidden_states: torch.Tensor  # [T, D] (or the input's leading shape + [D])
    router_logits: torch.Tensor  # [T, E]
    router_probs: torch.Tensor  # [T, E] float32 scores the selection used
    topk_ids: torch.Tensor  # [T, K] chosen experts (before any capacity drop)
    topk_weights: torch.Tensor  # [T, K] combine weights
    tokens_per_expert: torch.Tensor  # [E] slots each expert actually processed
    capacity: CapacityResult | None  # None when no capacity factor is set

    @property
    def num_dropped(self) -> int:
        return self.capacity.num_dropped if self.capacity else 0


class SparseMoE(nn.Module):
    """Router + routed SwiGLU experts + optional shared experts."""

    def __init__(self, config: MoEConfig) -> None:
        super().__init__()
        self.config = config
        self.router = TopKRouter(config)
        self.experts = SwiGLUExperts(config.num_experts, config.hidden_size, config.intermediate_size)
        self.shared_experts = (
            SwiGLUMLP(config.hidden_size, config.num_shared_experts * config.shared_size)
            if config.num_shared_experts
            else None
        )

    def forward(self, hidden_states: torch.Tensor, generator: torch.Generator | None = None) -> MoEOutput:
        cfg = self.config
        if hidden_states.shape[-1] != cfg.hidden_size:
            raise ValueError(
                f"hidden_states must end in D={cfg.hidden_size}, got shape {tuple(hidden_states.shape)}"
            )
        lead_shape = hidden_states.shape[:-1]
        x_TD = hidden_states.reshape(-1, cfg.hidden_size)
        routing = self.router(x_TD, generator=generator)
        compute_ids_TK = routing.topk_ids
        capacity = None
        if cfg.capacity_factor is not None and x_TD.shape[0] > 0:
            capacity = apply_capacity(routing.topk_ids, cfg.num_experts, cfg.capacity_factor)
            compute_ids_TK = routing.topk_ids.masked_fill(~capacity.keep, -1)
        weights_TK = routing.topk_weights.to(x_TD.dtype)
        out_TD = self.experts(x_TD, weights_TK, compute_ids_TK, backend=cfg.backend)
        if self.shared_experts is not None:
            out_TD = out_TD + self.shared_experts(x_TD)
        return MoEOutput(
            hidden_states=out_TD.reshape(*lead_shape, cfg.hidden_size),
            router_logits=routing.router_logits,
            router_probs=routing.router_probs,
            topk_ids=routing.topk_ids,
            topk_weights=routing.topk_weights,
            tokens_per_expert=expert_counts(compute_ids_TK, cfg.num_experts),
            capacity=capacity,
        )
