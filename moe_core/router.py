"""Routers: which experts does each token visit, and with what weight?

Three recipes, all starting from raw logits `router_logits [T, E]` of a linear gate:

* `softmax_topk` — Mixtral / Switch: softmax in float32 (optionally with a temperature and with
  Gaussian noise on the logits, the noisy top-k gate of Shazeer et al. 2017,
  https://arxiv.org/abs/1701.06538), keep the K largest, optionally renormalise them to sum to 1.
* `sigmoid_bias_topk` — DeepSeek-V3's auxiliary-loss-free balancing
  (https://arxiv.org/abs/2412.19437, §2.1.2): sigmoid scores; a per-expert bias is added for
  *selection only*; the weights come from the unbiased scores.
* `expert_choice` — Zhou et al. 2022 (https://arxiv.org/abs/2202.09368): experts pick their top-C
  tokens instead, so loads are equal by construction and a token may get 0..E experts.

NOTE: scores are computed in float32 whatever the input dtype, as Hugging Face and torchtitan do:
top-k ties and small probability gaps decide the load, so they must not depend on bf16 rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from moe_core.config import MoEConfig


@dataclass
class Routing:
    """Routing decision for T tokens (fields follow Hugging Face's names)."""

    router_logits: torch.Tensor  # [T, E] raw gate output, before noise and temperature
    router_probs: torch.Tensor  # [T, E] float32 scores the selection was made on
    topk_weights: torch.Tensor  # [T, K] float32 combine weights (routing_weights)
    topk_ids: torch.Tensor  # [T, K] int64 chosen experts (selected_experts)


def check_logits(router_logits: torch.Tensor, top_k: int) -> None:
    """Reject inputs that would otherwise give a silently wrong routing."""
    if router_logits.dim() != 2:
        raise ValueError(f"router_logits must have shape [T, E], got {tuple(router_logits.shape)}")
    num_experts = router_logits.shape[1]
    if not 1 <= top_k <= num_experts:
        raise ValueError(f"topk must be in 1..E = 1..{num_experts}, got {top_k}")
    if not router_logits.is_floating_point():
        raise ValueError(f"router_logits must be a floating tensor, got {router_logits.dtype}")
    if router_logits.numel() and not torch.isfinite(router_logits).all():
        raise ValueError("router_logits contain NaN or infinite values")


def softmax_topk(
    router_logits: torch.Tensor,
    top_k: int,
    renormalize: bool = True,
    temperature: float = 1.0,
    noise_std: float = 0.0,
    generator: torch.Generator | None = None,
) -> Routing:
    """Top-k softmax routing. Shapes: logits [T, E] -> weights, ids [T, K]."""
    check_logits(router_logits, top_k)
    logits_TE = router_logits.float()
    if noise_std > 0:
        # Shazeer et al. learn the noise scale per expert; a fixed scale shows the same effect
        # (ties broken at random, more exploration) with one slider.
        noise = torch.randn(logits_TE.shape, generator=generator, device=logits_TE.device)
        logits_TE = logits_TE + noise_std * noise
    probs_TE = torch.softmax(logits_TE / temperature, dim=-1)
    topk_weights_TK, topk_ids_TK = torch.topk(probs_TE, top_k, dim=-1)
    if renormalize:
        topk_weights_TK = topk_weights_TK / topk_weights_TK.sum(dim=-1, keepdim=True)
    return Routing(router_logits, probs_TE, topk_weights_TK, topk_ids_TK)


def sigmoid_bias_topk(
    router_logits: torch.Tensor, top_k: int, expert_bias: torch.Tensor, renormalize: bool = True
) -> Routing:
    """DeepSeek-V3 routing: select on sigmoid(logits) + bias, weight by sigmoid(logits) alone."""
    check_logits(router_logits, top_k)
    scores_TE = torch.sigmoid(router_logits.float())
    _, topk_ids_TK = torch.topk(scores_TE + expert_bias.float(), top_k, dim=-1)
    topk_weights_TK = scores_TE.gather(1, topk_ids_TK)
    if renormalize:
        # NOTE: sigmoid scores can all underflow to 0; transformers' DeepSeek-V3 router adds 1e-20
        # so the weights are then 0, not 0/0 = NaN.
        topk_weights_TK = topk_weights_TK / (topk_weights_TK.sum(dim=-1, keepdim=True) + 1e-20)
    return Routing(router_logits, scores_TE, topk_weights_TK, topk_ids_TK)


@dataclass
class ExpertChoice:
    """Expert-choice routing: each expert's chosen tokens and their weights."""

    token_ids: torch.Tensor  # [E, C] int64 tokens picked by each expert
    weights: torch.Tensor  # [E, C] float32 softmax score of (token, expert)
    tokens_per_expert: torch.Tensor  # [E] int64, equal to C by construction
    experts_per_token: torch.Tensor  # [T] int64, 0..E; 0 means the token was skipped


def expert_choice(router_logits: torch.Tensor, capacity_factor: float = 1.0, top_k: int = 1) -> ExpertChoice:
    """Each expert takes its C = ceil(capacity_factor * T * top_k / E) best tokens."""
    check_logits(router_logits, 1)
    num_tokens, num_experts = router_logits.shape
    capacity = min(num_tokens, math.ceil(capacity_factor * num_tokens * top_k / num_experts))
    probs_TE = torch.softmax(router_logits.float(), dim=-1)
    weights_EC, token_ids_EC = torch.topk(probs_TE.t(), capacity, dim=-1)
    experts_per_token = torch.bincount(token_ids_EC.flatten(), minlength=num_tokens)
    tokens_per_expert = torch.full((num_experts,), capacity, dtype=torch.long)
    return ExpertChoice(token_ids_EC, weights_EC, tokens_per_expert, experts_per_token)


class TopKRouter(nn.Module):
    """A linear gate (no bias, as Mixtral) followed by the configured routing recipe."""

    def __init__(self, config: MoEConfig) -> None:
        super().__init__()
        self.config = config
        self.gate = nn.Linear(config.hidden_size, config.num_experts, bias=False)
        # Selection-only bias of DeepSeek-V3; a buffer, because it is nudged, not learned.
        self.register_buffer("expert_bias", torch.zeros(config.num_experts))

    def forward(self, hidden_states_TD: torch.Tensor, generator: torch.Generator | None = None) -> Routing:
        cfg = self.config
        router_logits_TE = self.gate(hidden_states_TD)
        if cfg.routing == "sigmoid_bias":
            return sigmoid_bias_topk(router_logits_TE, cfg.top_k, self.expert_bias, cfg.renormalize)
        if cfg.routing == "expert_choice":
            raise ValueError(
                "expert_choice routing gives per-expert token lists; call router.expert_choice()"
            )
        return softmax_topk(
            router_logits_TE,
            cfg.top_k,
            cfg.renormalize,
            cfg.router_temperature,
            cfg.router_noise_std,
            generator,
        )
