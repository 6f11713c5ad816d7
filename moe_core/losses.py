"""Balancing losses (DESIGN.md contract 2).

* `load_balancing_loss` — Switch Transformer's auxiliary loss (Fedus et al. 2021, eqs. 4–6,
  https://arxiv.org/abs/2101.03961), exactly as Hugging Face `transformers` computes it in
  `load_balancing_loss_func` for one layer and no attention mask:

      f_e = (# top-k slots routed to e) / T          (sums to K, not 1 — HF's convention)
      P_e = mean over tokens of softmax(logits)_e
      loss = E * sum_e f_e * P_e                      (= K for a perfectly balanced router)

  Only P carries gradient: it pushes probability away from the over-loaded experts.
* `router_z_loss` — ST-MoE's z-loss (Zoph et al. 2022, eq. 5, https://arxiv.org/abs/2202.08906):
  mean over tokens of logsumexp(logits)^2, which keeps router logits small so the float32
  softmax stays well conditioned.
"""

from __future__ import annotations

import torch

from moe_core.router import check_logits


def load_balancing_loss(router_logits: torch.Tensor, num_experts: int, top_k: int) -> torch.Tensor:
    """Switch auxiliary loss for router_logits [T, E]; a 0-dim float32 tensor."""
    check_logits(router_logits, top_k)
    if router_logits.shape[1] != num_experts:
        raise ValueError(f"router_logits must be [T, E={num_experts}], got {tuple(router_logits.shape)}")
    num_tokens = router_logits.shape[0]
    if num_tokens == 0:
        raise ValueError("router_logits has no tokens (T = 0): the loss is undefined")
    probs_TE = torch.softmax(router_logits.float(), dim=-1)
    _, selected_TK = torch.topk(probs_TE, top_k, dim=-1)
    counts_E = torch.bincount(selected_TK.reshape(-1), minlength=num_experts).float()
    tokens_per_expert = counts_E / num_tokens  # f_e
    router_prob_per_expert = probs_TE.mean(dim=0)  # P_e
    return num_experts * torch.sum(tokens_per_expert * router_prob_per_expert)


def router_z_loss(router_logits: torch.Tensor) -> torch.Tensor:
    """ST-MoE router z-loss: mean_t logsumexp(logits_t)^2."""
    if router_logits.dim() != 2 or router_logits.shape[0] == 0:
        raise ValueError(f"router_logits must be [T >= 1, E], got {tuple(router_logits.shape)}")
    return torch.logsumexp(router_logits.float(), dim=-1).square().mean()
