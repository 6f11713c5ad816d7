"""The tiny MoE of Lesson 4: one routed layer, small enough to train live in a browser tab.

    x [T, D] -> gate (linear, no bias) -> router_logits [T, E]
             -> softmax top-k  (Switch / Mixtral)          or
                sigmoid + selection-only bias top-k (DeepSeek-V3, auxiliary-loss-free)
             -> optional capacity limit (slots over C = ceil(cf * T * K / E) are dropped)
             -> SwiGLU experts (moe_core.ops.moe_experts) weighted by the routing weights -> y [T, D]

Two choices make collapse a *learning dynamic* the learner can watch, not an artefact of the
initialisation (shared/DESIGN.md, "Measured: what makes a tiny MoE collapse honestly"):

* Switch-style top-1 **without renormalisation**: the chosen expert's output is scaled by its
  router probability, so the task loss has a gradient into the router. (Renormalised top-1 gives
  weight 1 whatever the router says, and the router would learn nothing from the task.)
* The gate starts **tiny** (std GATE_INIT_STD) and **blind to what tokens share**: every expert
  scores ≈ 1/E for every token, and the top-1 choice is decided by each token's own noise, so step 0
  is balanced (max share 0.15–0.22 of 8 over 20 seeds). Two shortcuts would script the result
  instead: an exactly zero gate (top-k breaks exact ties by index: every token starts on expert 0),
  and a plain random gate, whose projection on the shared shift gives one expert a head start on
  every token (step-0 max share up to 0.54, measured). So `blind_to` directions (the task's shared
  shift and domain centres) are projected out of the initial gate; training may then learn along
  them freely, and the collapse the lesson shows is learned, not initialised.

Routing, capacity, expert compute and load counting are moe_core's own functions; this module
only wires them into a model whose routing recipe can change between training steps (Lesson 4
switches balancing on in the middle of a run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from moe_core.dispatch import apply_capacity
from moe_core.experts import SwiGLUExperts
from moe_core.metrics import expert_counts
from moe_core.router import Routing, sigmoid_bias_topk, softmax_topk

SCORINGS = ("softmax", "sigmoid")
GATE_INIT_STD = 1e-3  # tiny: scores all ≈ 1/E, but no exact ties


@dataclass(frozen=True)
class TinyMoEConfig:
    hidden_size: int = 32  # D, the data's dimension
    # F per expert. Tiny on purpose: no expert can fit all 8 domains, so a collapsed router (one to
    # four experts alive) loses capacity and a balanced one uses all of it. Measured over 10 seeds,
    # the balanced runs end at 0.88x the collapsed runs' mean task loss with F = 3; with F = 8 one expert
    # fitted the task about as well as eight, so balancing could not help, and the Switch loss (whose
    # preference for a uniform router shrinks every top-1 output) cost 1.28–1.46x.
    expert_hidden: int = 3
    num_experts: int = 8  # E
    top_k: int = 1  # K; Switch routes each token to one expert
    renormalize: bool = False  # Switch does not: the router then learns from the task loss

    def __post_init__(self) -> None:
        for name in ("hidden_size", "expert_hidden", "num_experts", "top_k"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TinyMoEConfig.{name} must be a positive integer, got {value!r}")
        if self.top_k > self.num_experts:
            raise ValueError(f"top_k ({self.top_k}) must not exceed num_experts ({self.num_experts})")


@dataclass
class TinyMoEOutput:
    prediction: torch.Tensor  # [T, D]
    routing: Routing  # router_logits [T, E] (before noise), scores, topk ids / weights [T, K]
    tokens_per_expert: torch.Tensor  # [E] slots the router *chose* per expert (before drops)
    num_dropped: int  # slots a capacity limit dropped (0 without one)


class TinyMoE(nn.Module):
    """One routed SwiGLU layer with a near-zero gate and a DeepSeek-V3 selection bias."""

    def __init__(
        self,
        config: TinyMoEConfig,
        generator: torch.Generator | None = None,
        blind_to: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.gate = nn.Linear(config.hidden_size, config.num_experts, bias=False)
        # Nudged after each step by the aux-free method, never learned by gradient descent.
        self.register_buffer("expert_bias", torch.zeros(config.num_experts))
        self.experts = SwiGLUExperts(config.num_experts, config.hidden_size, config.expert_hidden)
        self.reset_parameters(generator, blind_to)

    def reset_parameters(
        self, generator: torch.Generator | None = None, blind_to: torch.Tensor | None = None
    ) -> None:
        """Seeded from `generator`, not torch's global RNG, so that two runs training at once in
        one process (two learners) still each get the run their seed promises. `blind_to` [k, D]:
        directions the initial gate ignores (see the module docstring)."""
        nn.init.normal_(self.gate.weight, std=GATE_INIT_STD, generator=generator)
        if blind_to is not None:
            basis_DK, _ = torch.linalg.qr(blind_to.t().to(self.gate.weight.dtype))  # orthonormal [D, k]
            with torch.no_grad():
                self.gate.weight -= self.gate.weight @ basis_DK @ basis_DK.t()
        for w in (self.experts.w1, self.experts.w2):  # nn.Linear's fan-in scale, as SwiGLUExperts
            bound = 1 / math.sqrt(w.shape[2])
            nn.init.uniform_(w, -bound, bound, generator=generator)

    def route(
        self,
        x_TD: torch.Tensor,
        scoring: str = "softmax",
        noise_std: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> Routing:
        """Routing decision for x [T, D]; noise (if any) perturbs selection and weights alike."""
        cfg = self.config
        router_logits_TE = self.gate(x_TD)
        if scoring == "softmax":
            return softmax_topk(
                router_logits_TE, cfg.top_k, cfg.renormalize, noise_std=noise_std, generator=generator
            )
        if scoring != "sigmoid":
            raise ValueError(f"scoring must be one of {SCORINGS}, got {scoring!r}")
        noisy_TE = router_logits_TE
        if noise_std > 0:
            noise = torch.randn(router_logits_TE.shape, generator=generator)
            noisy_TE = router_logits_TE + noise_std * noise
        routing = sigmoid_bias_topk(noisy_TE, cfg.top_k, self.expert_bias, cfg.renormalize)
        routing.router_logits = router_logits_TE  # losses see the clean logits, as for softmax
        return routing

    def forward(
        self,
        x_TD: torch.Tensor,
        scoring: str = "softmax",
        noise_std: float = 0.0,
        capacity_factor: float | None = None,
        generator: torch.Generator | None = None,
    ) -> TinyMoEOutput:
        routing = self.route(x_TD, scoring, noise_std, generator)
        compute_ids_TK, num_dropped = routing.topk_ids, 0
        if capacity_factor is not None:
            capacity = apply_capacity(routing.topk_ids, self.config.num_experts, capacity_factor)
            compute_ids_TK = routing.topk_ids.masked_fill(~capacity.keep, -1)
            num_dropped = capacity.num_dropped
        weights_TK = routing.topk_weights.to(x_TD.dtype)
        prediction_TD = self.experts(x_TD, weights_TK, compute_ids_TK, backend="torch")
        counts_E = expert_counts(routing.topk_ids, self.config.num_experts)
        return TinyMoEOutput(prediction_TD, routing, counts_E, num_dropped)
