"""SwiGLU experts with stacked weights, and the dense SwiGLU MLP used for shared experts.

Stacked weights (one tensor for all experts, as vLLM and transformers >= 5 store them) are what a
grouped GEMM reads: w1 [E, 2F, D] = [gate; up] per expert, w2 [E, D, F]. Mixtral's names:
w1 = gate_proj (here the first F rows), w3 = up_proj (the next F rows), w2 = down_proj.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from moe_core.kernels.tiles import TileConfig
from moe_core.ops import moe_experts


class SwiGLUExperts(nn.Module):
    """E routed experts; forward takes the routing decision and runs the chosen backend."""

    def __init__(self, num_experts: int, hidden_size: int, intermediate_size: int) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(num_experts, 2 * intermediate_size, hidden_size))
        self.w2 = nn.Parameter(torch.empty(num_experts, hidden_size, intermediate_size))
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
        return moe_experts(hidden_states_TD, self.w1, self.w2, topk_weights_TK, topk_ids_TK, backend, tiles)


class SwiGLUMLP(nn.Module):
    """A dense SwiGLU feed-forward block; n shared experts of width F are one MLP of width n*F."""

    def __init__(self, hidden_size: int, intermediate_size: int) -> None:
        super().__init__()
        self.gate_up_proj = nn.Linear(hidden_size, 2 * intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)

    def forward(self, hidden_states_TD: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(hidden_states_TD).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)
