"""`fused_moe` — the functional entry point (DESIGN.md contract 1, vLLM's convention).

    out[t] = sum_k p_tk * w2_e (silu(gate_e x_t) * up_e x_t)          (e = k-th chosen expert of t)

`hidden_states [T, D]`, `w1 [E, 2F, D]` (rows 0:F gate, F:2F up), `w2 [E, D, F]`,
`gating_output [T, E]` raw router logits. Scores are softmax(logits) in float32, top-k, optionally
renormalised. Backends compute the same function:

    "torch"  sorted-segment matmuls in plain torch (the reference the app uses on a CPU)
    "loop"   Hugging Face-style per-expert loop (the slow, obvious reference)
    "triton" the grouped-GEMM kernel (compiled on CUDA, Triton's interpreter on a CPU)
    "auto"   triton for CUDA tensors, torch otherwise
"""

from __future__ import annotations

import os

import torch

from moe_core.kernels import load_triton, triton_interpreted
from moe_core.kernels.reference import expert_activation, experts_general, experts_loop, experts_sorted
from moe_core.kernels.tiles import TileConfig, default_tiles
from moe_core.router import softmax_topk

_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def resolve_backend(backend: str, device: torch.device) -> str:
    if backend == "auto":
        return "triton" if device.type == "cuda" else "torch"
    if backend not in ("torch", "loop", "triton"):
        raise ValueError(f"backend must be 'auto', 'torch', 'loop' or 'triton', got {backend!r}")
    return backend


def _check_expert_inputs(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, gated: bool = True) -> None:
    if x.dim() != 2:
        raise ValueError(f"hidden_states must have shape [T, D], got {tuple(x.shape)}")
    if w1.dim() != 3 or w2.dim() != 3:
        raise ValueError(
            f"w1 must be [E, 2F, D] and w2 [E, D, F], got w1 {tuple(w1.shape)} and w2 {tuple(w2.shape)}"
        )
    num_experts, two_f, hidden = w1.shape
    if hidden != x.shape[1]:
        raise ValueError(f"w1 must be [E, 2F, D={x.shape[1]}] to match hidden_states, got {tuple(w1.shape)}")
    if gated and two_f % 2:
        raise ValueError(f"w1's second dim must be 2F (gate and up rows), got odd {two_f}")
    ffn = two_f // 2 if gated else two_f
    if tuple(w2.shape) != (num_experts, hidden, ffn):
        raise ValueError(f"w2 must be [E, D, F] = {(num_experts, hidden, ffn)}, got {tuple(w2.shape)}")
    for name, t in (("hidden_states", x), ("w1", w1), ("w2", w2)):
        if t.dtype not in _FLOAT_DTYPES:
            raise ValueError(f"{name} must be a floating tensor, got {t.dtype}")
    if not (x.dtype == w1.dtype == w2.dtype):
        raise ValueError(f"hidden_states, w1, w2 must share a dtype, got {x.dtype}, {w1.dtype}, {w2.dtype}")
    if not (x.device == w1.device == w2.device):
        raise ValueError("hidden_states, w1, w2 must be on one device")


def check_topk_ids(topk_ids: torch.Tensor, num_experts: int) -> None:
    """Expert ids must lie in 0..E-1, or be -1 (a slot dropped by a capacity limit)."""
    if topk_ids.is_floating_point() or topk_ids.is_complex() or topk_ids.dtype == torch.bool:
        raise ValueError(f"topk_ids must be an integer tensor, got {topk_ids.dtype}")
    if topk_ids.numel() and (int(topk_ids.max()) >= num_experts or int(topk_ids.min()) < -1):
        raise ValueError(
            f"topk_ids must lie in 0..E-1 = 0..{num_experts - 1} (or be -1 for a dropped slot), got "
            f"values in {int(topk_ids.min())}..{int(topk_ids.max())}"
        )


def moe_experts(
    hidden_states: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    topk_weights: torch.Tensor,
    topk_ids: torch.Tensor,
    backend: str = "auto",
    tiles: TileConfig | None = None,
    *,
    hidden_act: str = "silu",
    is_act_and_mul: bool = True,
    w1_bias: torch.Tensor | None = None,
    w2_bias: torch.Tensor | None = None,
    apply_router_weight_on_input: bool = False,
    swiglu_alpha: float = 1.702,
    swiglu_limit: float = 7.0,
) -> torch.Tensor:
    """The routed experts alone, given a routing (ids -1 mark dropped slots). Returns [T, D].

    The keyword options describe other families' experts (see `MoEConfig`): `hidden_act`,
    `is_act_and_mul` (gated: w1 is [E, 2F, D]; else [E, F, D]), biases `w1_bias [E, 2F or F]` and
    `w2_bias [E, D]`, and `apply_router_weight_on_input` (Llama-4). Without them this is the
    Mixtral expert and runs the fused kernel; with them, the Triton path chains two grouped GEMMs.
    """
    _check_expert_inputs(hidden_states, w1, w2, is_act_and_mul)
    if (
        topk_ids.shape != topk_weights.shape
        or topk_ids.dim() != 2
        or topk_ids.shape[0] != hidden_states.shape[0]
    ):
        raise ValueError(
            f"topk_ids and topk_weights must both be [T={hidden_states.shape[0]}, K], "
            f"got {tuple(topk_ids.shape)} and {tuple(topk_weights.shape)}"
        )
    check_topk_ids(topk_ids, w1.shape[0])
    backend = resolve_backend(backend, hidden_states.device)
    if hidden_states.shape[0] == 0:
        return hidden_states.new_zeros(hidden_states.shape)
    plain = (hidden_act == "silu" and is_act_and_mul and w1_bias is None and w2_bias is None
             and not apply_router_weight_on_input)
    if not plain:
        act = lambda h: expert_activation(h, hidden_act, is_act_and_mul, swiglu_alpha, swiglu_limit)
        options = (act, w1_bias, w2_bias, apply_router_weight_on_input)
        if backend != "triton":
            return experts_general(hidden_states, w1, w2, topk_weights, topk_ids, *options)
    if backend == "loop":
        return experts_loop(hidden_states, w1, w2, topk_weights, topk_ids)
    if backend == "torch":
        return experts_sorted(hidden_states, w1, w2, topk_weights, topk_ids)
    return _triton_path(hidden_states, w1, w2, topk_weights, topk_ids, tiles, None if plain else options)


def _triton_path(hidden_states, w1, w2, topk_weights, topk_ids, tiles, options):
    """The grouped-GEMM kernel: fused SwiGLU (options None) or the general chain of two GEMMs."""
    if hidden_states.dtype == torch.float64:
        raise ValueError(
            "backend='triton' computes in fp32 tensor-core GEMMs and does not take float64 inputs; "
            "use backend='torch' for float64"
        )
    triton_moe = load_triton()
    if hidden_states.device.type != "cuda" and not triton_interpreted():
        raise ValueError(
            "backend='triton' on CPU tensors needs Triton's interpreter (TRITON_INTERPRET=1); "
            "move the tensors to the GPU or use backend='torch'"
        )
    # Autotuning times the fused SwiGLU kernel, so it tunes only that case; other experts take defaults.
    autotune = os.environ.get("MOE_CORE_AUTOTUNE", "1") != "0"
    if tiles is None and options is None and not triton_interpreted() and autotune:
        tiles = triton_moe.tuned_tiles(hidden_states, w1, w2, topk_weights, topk_ids.long())
    tiles = tiles or default_tiles(hidden_states.shape[0], triton_interpreted())
    w1_bias, w2_bias = (options[1], options[2]) if options else (None, None)
    tensors = (hidden_states.contiguous(), w1, w2, w1_bias, w2_bias)
    if triton_interpreted() and hidden_states.dtype == torch.bfloat16:
        # NOTE: Triton's interpreter runs tl.dot through numpy, which has no bf16: it returned values
        # near 1e10, silently. Compute in fp32 (autograd casts the gradients back) and round once.
        tensors = tuple(None if t is None else t.float() for t in tensors)
    x, w1_, w2_, b1, b2 = tensors
    if options is None:
        out = triton_moe.triton_experts(x, w1_, w2_, topk_weights, topk_ids.long(), tiles)
    else:
        act, _, _, weight_on_input = options
        out = triton_moe.triton_experts_general(
            x, w1_, w2_, topk_weights, topk_ids.long(), act, b1, b2, weight_on_input, tiles
        )
    return out.to(hidden_states.dtype)


def fused_moe(
    hidden_states: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    gating_output: torch.Tensor,
    topk: int,
    renormalize: bool = True,
    backend: str = "auto",
    tiles: TileConfig | None = None,
) -> torch.Tensor:
    """Route with softmax top-k, then run the routed SwiGLU experts. Returns [T, D]."""
    _check_expert_inputs(hidden_states, w1, w2)
    num_tokens, num_experts = hidden_states.shape[0], w1.shape[0]
    if gating_output.dim() != 2 or tuple(gating_output.shape) != (num_tokens, num_experts):
        raise ValueError(
            f"gating_output must be [T, E] = {(num_tokens, num_experts)}, got {tuple(gating_output.shape)}"
        )
    if isinstance(topk, bool) or not isinstance(topk, int):
        raise ValueError(f"topk must be an int, got {topk!r}")
    routing = softmax_topk(gating_output, topk, renormalize)
    return moe_experts(
        hidden_states, w1, w2, routing.topk_weights, routing.topk_ids, backend=backend, tiles=tiles
    )
