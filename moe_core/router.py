"""Routers: which experts does each token visit, and with what weight?

Three recipes, all starting from raw logits `router_logits [T, E]` of a linear gate:

* `softmax_topk` — Mixtral / Switch: softmax in float32 (optionally with a temperature and with
  Gaussian noise on the logits, the noisy top-k gate of Shazeer et al. 2017,
  https://arxiv.org/abs/1701.06538), keep the K largest, optionally renormalise them to sum to 1.
* `sigmoid_bias_topk` — DeepSeek-V3's auxiliary-loss-free balancing
  (https://arxiv.org/abs/2412.19437, §2.1.2): sigmoid scores; a per-expert bias is added for
  *selection only*; the weights come from the unbiased scores.
* `select_experts` — the general top-k recipe of today's families, with transformers' / vLLM's knobs:
  softmax or sigmoid scores, a selection-only score-correction bias, group-limited top-k
  (`n_group`, `topk_group`: DeepSeek-V2 §2.1.2 of https://arxiv.org/abs/2405.04434, DeepSeek-V3),
  top-k before or after the softmax, Lp renormalisation (DBRX), `routed_scaling_factor`.
* `sparsemixer_topk` — PhiMoE's SparseMixer (v2 in GRIN, https://arxiv.org/abs/2409.12136), eval mode: two
  argmax picks, each weighted by a softmax over the experts within a relative threshold of it.
* `expert_choice` — Zhou et al. 2022 (https://arxiv.org/abs/2202.09368): experts pick their top-C
  tokens instead, so loads are equal by construction and a token may get 0..E experts.

NOTE: scores are computed in float32 whatever the input dtype, as Hugging Face and torchtitan do:
top-k ties and small probability gaps decide the load, so they must not depend on bf16 rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
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
    return select_experts(
        router_logits, top_k, scoring_func="sigmoid", renormalize=renormalize,
        e_score_correction_bias=expert_bias,
    )  # fmt: skip


def group_limited_mask(
    choice_TE: torch.Tensor, n_group: int, topk_group: int, group_scoring: str = "max"
) -> torch.Tensor:
    """[T, E] bool: True for the experts inside each token's `topk_group` best groups.

    A group's score is its best expert's ("max", DeepSeek-V2) or the sum of its best two
    ("top2_sum", DeepSeek-V3 and GLM-4.5, computed on the bias-corrected scores).
    """
    num_tokens, num_experts = choice_TE.shape
    grouped_TGS = choice_TE.view(num_tokens, n_group, num_experts // n_group)
    if group_scoring == "top2_sum":
        group_scores_TG = grouped_TGS.topk(2, dim=-1).values.sum(dim=-1)
    else:
        group_scores_TG = grouped_TGS.max(dim=-1).values
    group_idx = torch.topk(group_scores_TG, topk_group, dim=-1, sorted=False).indices
    group_mask_TG = torch.zeros_like(group_scores_TG, dtype=torch.bool).scatter_(1, group_idx, True)
    return group_mask_TG[:, :, None].expand_as(grouped_TGS).reshape(num_tokens, num_experts)


def select_experts(
    router_logits: torch.Tensor,
    top_k: int,
    *,
    scoring_func: str = "softmax",
    renormalize: bool = True,
    renormalize_p: float = 1.0,
    topk_before_scoring: bool = False,
    e_score_correction_bias: torch.Tensor | None = None,
    n_group: int | None = None,
    topk_group: int | None = None,
    group_scoring: str = "max",
    routed_scaling_factor: float = 1.0,
) -> Routing:
    """General top-k routing (vLLM's `select_experts` knobs). Shapes: logits [T, E] -> [T, K].

    1. scores = softmax or sigmoid of the logits, in float32
    2. choice = scores (+ e_score_correction_bias); outside the topk_group best groups: -inf
    3. ids = top-k of choice; weights = the *uncorrected* scores of those experts
       (with topk_before_scoring: ids = top-k of the logits, weights = scoring_func of those K)
    4. renormalise: weights / ||weights||_p (+1e-20, as transformers, so all-zero weights stay 0)
    5. weights *= routed_scaling_factor
    """
    check_logits(router_logits, top_k)
    if scoring_func not in ("softmax", "sigmoid"):
        raise ValueError(f"scoring_func must be 'softmax' or 'sigmoid', got {scoring_func!r}")
    if not (renormalize_p > 0 and math.isfinite(renormalize_p)):
        raise ValueError(f"renormalize_p must be a positive finite number, got {renormalize_p!r}")
    if not math.isfinite(routed_scaling_factor):
        raise ValueError(f"routed_scaling_factor must be finite, got {routed_scaling_factor!r}")
    num_experts = router_logits.shape[1]
    logits_TE = router_logits.float()
    score = (lambda t: torch.softmax(t, dim=-1)) if scoring_func == "softmax" else torch.sigmoid
    scores_TE = score(logits_TE)
    if topk_before_scoring:
        if e_score_correction_bias is not None or n_group is not None:
            raise ValueError("topk_before_scoring selects on raw logits: no bias or groups")
        top_logits_TK, topk_ids_TK = torch.topk(logits_TE, top_k, dim=-1)
        topk_weights_TK = score(top_logits_TK)
    else:
        choice_TE = scores_TE
        if e_score_correction_bias is not None:
            if e_score_correction_bias.shape != (num_experts,):
                raise ValueError(f"e_score_correction_bias must be [E={num_experts}], "
                                 f"got {tuple(e_score_correction_bias.shape)}")
            choice_TE = scores_TE + e_score_correction_bias.float()
        if n_group is not None:
            if topk_group is None or num_experts % n_group or not 1 <= topk_group <= n_group:
                raise ValueError(f"n_group must divide E={num_experts} and 1 <= topk_group <= n_group, "
                                 f"got n_group={n_group}, topk_group={topk_group}")
            if top_k > topk_group * (num_experts // n_group):
                raise ValueError("top_k exceeds the experts in the topk_group chosen groups")
            if group_scoring not in ("max", "top2_sum"):
                raise ValueError(f"group_scoring must be 'max' or 'top2_sum', got {group_scoring!r}")
            if group_scoring == "top2_sum" and num_experts // n_group < 2:
                raise ValueError("group_scoring='top2_sum' needs at least 2 experts per group")
            keep_TE = group_limited_mask(choice_TE, n_group, topk_group, group_scoring)
            choice_TE = choice_TE.masked_fill(~keep_TE, float("-inf"))
        topk_ids_TK = torch.topk(choice_TE, top_k, dim=-1).indices
        topk_weights_TK = scores_TE.gather(1, topk_ids_TK)
    if renormalize:
        if renormalize_p == 1.0:
            norm_TK = topk_weights_TK.sum(dim=-1, keepdim=True)
        else:
            norm_TK = torch.linalg.vector_norm(topk_weights_TK, ord=renormalize_p, dim=-1, keepdim=True)
        # NOTE: sigmoid scores can all underflow to 0; transformers' DeepSeek-V3 router adds 1e-20
        # so the weights are then 0, not 0/0 = NaN. (Softmax top-k sums are >= 1/E: unchanged.)
        topk_weights_TK = topk_weights_TK / (norm_TK + 1e-20)
    if routed_scaling_factor != 1.0:
        topk_weights_TK = topk_weights_TK * routed_scaling_factor
    return Routing(router_logits, scores_TE, topk_weights_TK, topk_ids_TK)


def sparsemixer_topk(router_logits: torch.Tensor, jitter_eps: float = 0.01) -> Routing:
    """PhiMoE's SparseMixer top-2 as transformers runs it in eval mode (`sparsemixer`, training=False).

    Pick 1 is the argmax. Experts whose logit is more than a relative 2*jitter_eps below it are
    masked out; the weight is the softmax, over the experts left, at the pick. Pick 2 repeats this
    with pick 1 removed. (Training mode samples with Gumbel noise and uses Heun's-method gradient
    estimates; that is not implemented here.)
    """
    check_logits(router_logits, 2)
    scores_TE = router_logits.float()
    ids, weights = [], []
    masked_TE = scores_TE
    for _ in range(2):
        threshold_T1, pick_T1 = masked_TE.max(dim=-1, keepdim=True)
        with torch.no_grad():
            factor_TE = scores_TE.abs().clamp(min=threshold_T1)
            too_far_TE = ((threshold_T1 - scores_TE) / factor_TE) > 2 * jitter_eps
        gates_TE = torch.softmax(masked_TE.masked_fill(too_far_TE, float("-inf")), dim=-1)
        weights.append(gates_TE.gather(1, pick_T1))
        ids.append(pick_T1)
        masked_TE = torch.scatter(scores_TE, -1, pick_T1, float("-inf"))
    probs_TE = torch.softmax(scores_TE, dim=-1)
    return Routing(router_logits, probs_TE, torch.cat(weights, dim=1), torch.cat(ids, dim=1))


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
    """A linear gate (no bias, as Mixtral, unless `router_bias`) followed by the configured recipe."""

    def __init__(self, config: MoEConfig) -> None:
        super().__init__()
        self.config = config
        self.gate = nn.Linear(config.hidden_size, config.num_experts, bias=config.router_bias)
        # Selection-only bias of DeepSeek-V3 (transformers' e_score_correction_bias); a buffer,
        # because it is nudged, not learned.
        self.register_buffer("expert_bias", torch.zeros(config.num_experts))

    def forward(self, hidden_states_TD: torch.Tensor, generator: torch.Generator | None = None) -> Routing:
        cfg = self.config
        if cfg.router_fp32:  # NOTE: transformers' DeepSeek/GLM/Switch routers compute the logits in fp32
            bias = None if self.gate.bias is None else self.gate.bias.float()
            router_logits_TE = F.linear(hidden_states_TD.float(), self.gate.weight.float(), bias)
        else:
            router_logits_TE = self.gate(hidden_states_TD)
        if cfg.routing == "expert_choice":
            raise ValueError(
                "expert_choice routing gives per-expert token lists; call router.expert_choice()"
            )
        if cfg.routing == "sparsemixer":
            if self.training:
                raise ValueError("PhiMoE's sparsemixer is implemented in eval mode only: call .eval()")
            return sparsemixer_topk(router_logits_TE, cfg.sparsemixer_jitter_eps)
        if cfg.routing == "softmax_topk" and not cfg.uses_routing_options:
            return softmax_topk(
                router_logits_TE,
                cfg.top_k,
                cfg.renormalize,
                cfg.router_temperature,
                cfg.router_noise_std,
                generator,
            )
        use_bias = cfg.routing == "sigmoid_bias" or cfg.score_correction_bias
        return select_experts(
            router_logits_TE,
            cfg.top_k,
            scoring_func="softmax" if cfg.routing == "softmax_topk" else "sigmoid",
            renormalize=cfg.renormalize,
            renormalize_p=cfg.renormalize_p,
            topk_before_scoring=cfg.topk_before_scoring,
            e_score_correction_bias=self.expert_bias if use_bias else None,
            n_group=cfg.n_group,
            topk_group=cfg.topk_group,
            group_scoring=cfg.group_scoring,
            routed_scaling_factor=cfg.routed_scaling_factor,
        )
