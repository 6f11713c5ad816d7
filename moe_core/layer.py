"""`SparseMoE`: a complete MoE feed-forward layer, and everything the lessons need to draw it.

Forward pass, step by step (torchtitan's order):
    1. route     router_logits = gate(x); softmax (or sigmoid + bias) -> top-k ids and weights
    2. capacity  optionally drop the slots an over-full expert cannot take (ids set to -1): a
                 capacity factor over the batch, or Switch's fixed `expert_capacity` per sequence
    3. dispatch  sort slots by expert into block-aligned segments (inside the expert backend)
    4. experts   grouped SwiGLU GEMMs over the segments
    5. combine   weighted sum of each token's K expert outputs
    6. shared    add the always-on shared experts (DeepSeekMoE / Qwen-MoE), if any, scaled by
                 sigmoid(x . w_gate) when `shared_expert_gate` (Qwen2-MoE)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from moe_core.config import MoEConfig
from moe_core.dispatch import CapacityResult, apply_capacity, apply_expert_capacity
from moe_core.experts import RoutedExperts, SwiGLUMLP
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
        self.experts = RoutedExperts(
            config.num_experts, config.hidden_size, config.intermediate_size,
            hidden_act=config.hidden_act, is_act_and_mul=config.is_act_and_mul, has_bias=config.has_bias,
            swiglu_alpha=config.swiglu_alpha, swiglu_limit=config.swiglu_limit,
            apply_router_weight_on_input=config.apply_router_weight_on_input,
        )  # fmt: skip
        self.shared_experts = (
            SwiGLUMLP(config.hidden_size, config.num_shared_experts * config.shared_size)
            if config.num_shared_experts
            else None
        )
        gated = config.shared_expert_gate and config.num_shared_experts
        self.shared_expert_gate = nn.Linear(config.hidden_size, 1, bias=False) if gated else None

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
        elif cfg.expert_capacity is not None and x_TD.shape[0] > 0:
            sequences = lead_shape[0] if len(lead_shape) == 2 else 1  # [B, T, D]: C per sequence
            capacity = apply_expert_capacity(
                routing.topk_ids, cfg.num_experts, cfg.expert_capacity, sequences
            )
        if capacity is not None:
            compute_ids_TK = routing.topk_ids.masked_fill(~capacity.keep, -1)
        weights_TK = routing.topk_weights.to(x_TD.dtype)
        out_TD = self.experts(x_TD, weights_TK, compute_ids_TK, backend=cfg.backend)
        if self.shared_experts is not None:
            shared_TD = self.shared_experts(x_TD)
            if self.shared_expert_gate is not None:
                shared_TD = torch.sigmoid(self.shared_expert_gate(x_TD)) * shared_TD
            out_TD = out_TD + shared_TD
        return MoEOutput(
            hidden_states=out_TD.reshape(*lead_shape, cfg.hidden_size),
            router_logits=routing.router_logits,
            router_probs=routing.router_probs,
            topk_ids=routing.topk_ids,
            topk_weights=routing.topk_weights,
            tokens_per_expert=expert_counts(compute_ids_TK, cfg.num_experts),
            capacity=capacity,
        )
