"""Run the course's language model with its routing changed, to see what routing is worth.

The shipped `MoELM` was trained with softmax top-2 of 8. A learner who asks "what if each token
saw only one expert?" or "what does the temperature do?" can get the answer as a number: the
model's next-token loss on a real passage, routed differently at inference time only. This module
replays `MoELM.forward` layer by layer and swaps step 1 of each MoE layer (route) for
`moe_core.router.softmax_topk` with the learner's settings; everything else (attention, norms,
experts, combine) is the model's own code. Nothing is mutated, so the model can stay shared.

Shape legend: B batch, T tokens, D model dim, E experts, K experts per token, V vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from moe_core.lm.model import MoELM, rope_cos_sin
from moe_core.router import softmax_topk


@dataclass(frozen=True)
class RoutingSettings:
    """How every MoE layer routes at inference (the model was trained with top_k=2, the rest off)."""

    top_k: int = 2
    temperature: float = 1.0
    renormalize: bool = True
    noise_std: float = 0.0
    seed: int = 0  # for the noise, so a slider position always gives the same answer


@dataclass
class ProbeOutput:
    logits: torch.Tensor  # [B, T, V]
    router_logits: tuple[torch.Tensor, ...]  # one [B*T, E] per layer (before temperature/noise)
    topk_ids: tuple[torch.Tensor, ...]  # one [B*T, K] per layer, as routed with the settings
    topk_weights: tuple[torch.Tensor, ...]  # one [B*T, K] per layer


@torch.no_grad()
def forward_with_routing(model: MoELM, input_ids: torch.Tensor, settings: RoutingSettings) -> ProbeOutput:
    """`model(input_ids)` with every MoE layer routed by `settings` instead of its own config."""
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be [B, T], got shape {tuple(input_ids.shape)}")
    num_experts = model.config.num_local_experts
    if not 1 <= settings.top_k <= num_experts:
        raise ValueError(f"top_k must be from 1 to {num_experts}, got {settings.top_k}")
    generator = torch.Generator().manual_seed(settings.seed)
    x = model.embed_tokens(input_ids)  # [B, T, D]
    positions = torch.arange(input_ids.shape[1])
    cos, sin = rope_cos_sin(positions, model.config.head_dim, model.config.rope_theta)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    logits_per_layer, ids_per_layer, weights_per_layer = [], [], []
    for layer in model.layers:
        x = x + layer.self_attn(layer.input_layernorm(x), cos, sin, None)
        h_TD = layer.post_attention_layernorm(x).reshape(-1, x.shape[-1])
        router_logits_TE = layer.mlp.router.gate(h_TD)
        routing = softmax_topk(router_logits_TE, settings.top_k, settings.renormalize,
                               settings.temperature, settings.noise_std, generator)  # fmt: skip
        out_TD = layer.mlp.experts(h_TD, routing.topk_weights.to(h_TD.dtype), routing.topk_ids,
                                   backend="torch")  # fmt: skip
        x = x + out_TD.reshape(x.shape)
        logits_per_layer.append(router_logits_TE)
        ids_per_layer.append(routing.topk_ids)
        weights_per_layer.append(routing.topk_weights)
    logits = model.lm_head(model.norm(x))
    return ProbeOutput(logits, tuple(logits_per_layer), tuple(ids_per_layer), tuple(weights_per_layer))


def next_token_bits(logits_BTV: torch.Tensor, input_ids: torch.Tensor) -> float:
    """Mean next-token cross-entropy in bits per token (predict token t+1 from tokens ≤ t)."""
    if input_ids.shape[1] < 2:
        raise ValueError("need at least two tokens to score a next-token prediction")
    pred = logits_BTV[:, :-1].reshape(-1, logits_BTV.shape[-1]).float()
    target = input_ids[:, 1:].reshape(-1)
    return float(F.cross_entropy(pred, target)) / math.log(2)
