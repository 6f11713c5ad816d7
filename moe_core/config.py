"""One validated configuration for a sparse MoE layer.

Shape legend used across `moe_core` (torchtitan's convention):
    T tokens, D model dim (hidden_size), F expert FFN dim (intermediate_size),
    E routed experts, K experts per token (top_k), N = T*K routed slots.

Validation lives here so every entry point (layer, CLI, lessons) fails the same way, early, with a
message naming the field — never deep inside a matmul.
"""

from __future__ import annotations

from dataclasses import dataclass

ROUTINGS = ("softmax_topk", "sigmoid_bias", "expert_choice")
BACKENDS = ("auto", "torch", "loop", "triton")


@dataclass(frozen=True)
class MoEConfig:
    hidden_size: int = 32  # D
    intermediate_size: int = 64  # F, per routed expert (SwiGLU: w1 has 2F rows)
    num_experts: int = 8  # E
    top_k: int = 2  # K, Mixtral's num_experts_per_tok
    num_shared_experts: int = 0  # DeepSeekMoE / Qwen-MoE style always-on experts
    shared_intermediate_size: int | None = None  # per shared expert; None = intermediate_size
    routing: str = "softmax_topk"  # see ROUTINGS
    renormalize: bool = True  # Mixtral renormalises top-k weights; Switch top-1 does not
    router_temperature: float = 1.0  # logits are divided by it before the softmax
    router_noise_std: float = 0.0  # noisy top-k (Shazeer et al. 2017) with a fixed noise scale
    capacity_factor: float | None = None  # None = no capacity limit, no dropped tokens
    backend: str = "torch"  # expert compute path, see BACKENDS
    block_size: int = 16  # rows per M-block of the grouped GEMM (vLLM's BLOCK_SIZE_M)

    def __post_init__(self) -> None:
        for name in ("hidden_size", "intermediate_size", "num_experts", "top_k", "block_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"MoEConfig.{name} must be a positive integer, got {value!r}")
        if self.top_k > self.num_experts:
            raise ValueError(
                f"MoEConfig.top_k ({self.top_k}) must not exceed num_experts ({self.num_experts})"
            )
        if not isinstance(self.num_shared_experts, int) or self.num_shared_experts < 0:
            raise ValueError(f"MoEConfig.num_shared_experts must be >= 0, got {self.num_shared_experts!r}")
        if self.shared_intermediate_size is not None and self.shared_intermediate_size < 1:
            raise ValueError("MoEConfig.shared_intermediate_size must be positive or None")
        if self.routing not in ROUTINGS:
            raise ValueError(f"MoEConfig.routing must be one of {ROUTINGS}, got {self.routing!r}")
        if not self.router_temperature > 0:
            raise ValueError(f"MoEConfig.router_temperature must be > 0, got {self.router_temperature!r}")
        if not self.router_noise_std >= 0:
            raise ValueError(f"MoEConfig.router_noise_std must be >= 0, got {self.router_noise_std!r}")
        if self.capacity_factor is not None and not self.capacity_factor > 0:
            raise ValueError(f"MoEConfig.capacity_factor must be > 0 or None, got {self.capacity_factor!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"MoEConfig.backend must be one of {BACKENDS}, got {self.backend!r}")

    @property
    def shared_size(self) -> int:
        """FFN width of one shared expert."""
        return self.shared_intermediate_size or self.intermediate_size
