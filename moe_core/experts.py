"""Routed experts with stacked weights, and the dense SwiGLU MLP used for shared experts.

Stacked weights (one tensor for all experts, as vLLM and transformers >= 5 store them) are what a
grouped GEMM reads: w1 [E, 2F, D] = [gate; up] per expert, w2 [E, D, F]. Mixtral's names:
w1 = gate_proj (here the first F rows), w3 = up_proj (the next F rows), w2 = down_proj.

`RoutedExperts` also covers the other families' experts (see `MoEConfig`): a plain activation
(Switch's ReLU FFN: w1 is then [E, F, D]), GPT-OSS's clamped SwiGLU with biases b1 [E, 2F] and
b2 [E, D], and Llama-4's routing weight applied to the expert's input.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from moe_core.kernels.tiles import TileConfig
from moe_core.ops import moe_experts


class RoutedExperts(nn.Module):
    """E routed experts; forward takes the routing decision and runs the chosen backend."""

    def __init__(
        self,
        num_experts: int,
        hidden_size: int,
        intermediate_size: int,
        *,
        hidden_act: str = "silu",
        is_act_and_mul: bool = True,
        has_bias: bool = False,
        swiglu_alpha: float = 1.702,
        swiglu_limit: float = 7.0,
        apply_router_weight_on_input: bool = False,
    ) -> None:
        super().__init__()
        rows = (2 if is_act_and_mul else 1) * intermediate_size
        self.w1 = nn.Parameter(torch.empty(num_experts, rows, hidden_size))
        self.w2 = nn.Parameter(torch.empty(num_experts, hidden_size, intermediate_size))
        # Biases only when asked, so a Mixtral-style layer's state dict stays {w1, w2}.
        self.b1 = nn.Parameter(torch.zeros(num_experts, rows)) if has_bias else None
        self.b2 = nn.Parameter(torch.zeros(num_experts, hidden_size)) if has_bias else None
        self.options = dict(
            hidden_act=hidden_act, is_act_and_mul=is_act_and_mul, swiglu_alpha=swiglu_alpha,
            swiglu_limit=swiglu_limit, apply_router_weight_on_input=apply_router_weight_on_input,
        )  # fmt: skip
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Same scale as nn.Linear's default fan-in init, per expert.
        nn.init.uniform_(self.w1, -1 / math.sqrt(self.w1.shape[2]), 1 / math.sqrt(self.w1.shape[2]))
        nn.init.uniform_(self.w2, -1 / math.sqrt(self.w2.shape[2]), 1 / math.sqrt(self.w2.shape[2]))

    def forward(
        self,
        hidden_states_TD: torch.Tensor,
        topk_weights_TK: torch.Tensor,
        topk_ids_TK: torch.Tensor,
        backend: str = "torch",
        tiles: TileConfig | None = None,
    ) -> torch.Tensor:
        return moe_experts(
            hidden_states_TD, self.w1, self.w2, topk_weights_TK, topk_ids_TK, backend, tiles,
            w1_bias=self.b1, w2_bias=self.b2, **self.options,
        )  # fmt: skip


class SwiGLUExperts(RoutedExperts):
    """The Mixtral expert: SwiGLU, no biases (the fused Triton kernel's case)."""

    def __init__(self, num_experts: int, hidden_size: int, intermediate_size: int) -> None:
        super().__init__(num_experts, hidden_size, intermediate_size)


class SwiGLUMLP(nn.Module):
    """A dense SwiGLU feed-forward block; n shared experts of width F are one MLP of width n*F."""

    def __init__(self, hidden_size: int, intermediate_size: int) -> None:
        super().__init__()
        self.gate_up_proj = nn.Linear(hidden_size, 2 * intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)

    def forward(self, hidden_states_TD: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(hidden_states_TD).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)
