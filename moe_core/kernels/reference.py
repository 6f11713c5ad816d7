"""Torch reference paths for the routed experts, kept beside the Triton kernel.

Both compute, for every token t and each of its K choices (expert e, weight p):

    out[t] = sum_k  p_tk * w2_e @ (silu(gate_e @ x_t) * (up_e @ x_t))      (the Mixtral expert)

with w1 [E, 2F, D] (rows 0:F gate, F:2F up) and w2 [E, D, F]. Slots whose expert id is outside
0..E-1 (dropped by a capacity limit) contribute nothing.

* `experts_loop` — Hugging Face style: one Python iteration per expert, gather its tokens, two
  matmuls, scatter-add back. Obvious, and slow when E is large (E small launches, E gathers).
* `experts_sorted` — the production layout in plain torch: sort slots by expert once, run each
  expert's matmul on a contiguous segment, un-permute. The Triton kernel does the same in one
  launch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _swiglu(x_MD: torch.Tensor, w1_2FD: torch.Tensor) -> torch.Tensor:
    gate_MF, up_MF = F.linear(x_MD, w1_2FD).chunk(2, dim=-1)
    return F.silu(gate_MF) * up_MF


def experts_loop(
    x_TD: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, topk_weights: torch.Tensor, topk_ids: torch.Tensor
) -> torch.Tensor:
    """Per-expert loop (transformers' MixtralExperts). Returns [T, D] in x's dtype."""
    out_TD = torch.zeros_like(x_TD)
    for expert in range(w1.shape[0]):
        token_idx, k_idx = torch.where(topk_ids == expert)
        if token_idx.numel() == 0:
            continue
        y_MD = F.linear(_swiglu(x_TD[token_idx], w1[expert]), w2[expert])
        y_MD = y_MD * topk_weights[token_idx, k_idx, None].to(y_MD.dtype)
        out_TD = out_TD.index_add(0, token_idx, y_MD.to(out_TD.dtype))
    return out_TD


def experts_sorted(
    x_TD: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, topk_weights: torch.Tensor, topk_ids: torch.Tensor
) -> torch.Tensor:
    """Sort slots by expert, one matmul per contiguous segment, weighted scatter-add back."""
    # Imported here: dispatch imports nothing of ours, but keeping the edge local documents
    # that this path is the one that shares its layout with the kernel.
    from moe_core.dispatch import sort_by_expert

    top_k = topk_ids.shape[1]
    sorted_slots_N, counts_E = sort_by_expert(topk_ids, w1.shape[0])
    token_of_slot = sorted_slots_N // top_k
    x_sorted_MD = x_TD[token_of_slot]  # gather once: [N_kept, D], grouped by expert
    segments = torch.split(x_sorted_MD, counts_E.tolist())
    y_sorted_MD = torch.cat(
        [F.linear(_swiglu(seg, w1[e]), w2[e]) for e, seg in enumerate(segments) if seg.shape[0]]
        or [x_TD.new_zeros(0, w2.shape[1])]
    )
    weights_N = topk_weights.reshape(-1)[sorted_slots_N].to(y_sorted_MD.dtype)
    out_TD = torch.zeros_like(x_TD)
    return out_TD.index_add(0, token_of_slot, (y_sorted_MD * weights_N[:, None]).to(x_TD.dtype))


# --- every family's expert: activations, biases, weight on the input ---------------------------

_ACTIVATIONS = {
    "silu": F.silu,
    "relu": F.relu,
    "gelu": F.gelu,  # transformers' "gelu" is the exact erf form
    "gelu_pytorch_tanh": lambda t: F.gelu(t, approximate="tanh"),
    "gelu_new": lambda t: F.gelu(t, approximate="tanh"),
}


def expert_activation(
    h_MH: torch.Tensor, hidden_act: str, is_act_and_mul: bool, alpha: float = 1.702, limit: float = 7.0
) -> torch.Tensor:
    """The expert's nonlinearity on w1's output: [M, 2F] -> [M, F] when gated, [M, F] -> [M, F] if not.

    "swigluoai" is GPT-OSS's clamped SwiGLU (transformers' GptOssExperts._apply_gate):
    gate <= limit, -limit <= up <= limit, out = (up + 1) * gate * sigmoid(alpha * gate).
    """
    if not is_act_and_mul:
        return _ACTIVATIONS[hidden_act](h_MH)
    gate_MF, up_MF = h_MH.chunk(2, dim=-1)
    if hidden_act == "swigluoai":
        gate_MF = gate_MF.clamp(max=limit)
        up_MF = up_MF.clamp(min=-limit, max=limit)
        return (up_MF + 1) * (gate_MF * torch.sigmoid(alpha * gate_MF))
    return _ACTIVATIONS[hidden_act](gate_MF) * up_MF


def experts_general(
    x_TD: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    topk_weights: torch.Tensor,
    topk_ids: torch.Tensor,
    act,
    b1: torch.Tensor | None = None,
    b2: torch.Tensor | None = None,
    weight_on_input: bool = False,
) -> torch.Tensor:
    """`experts_sorted` for any expert: act(w1 x + b1) -> w2 . + b2, weight on the output or input.

    `act` maps w1's output [M, H] to [M, F] (see `expert_activation`). With `weight_on_input`
    (Llama-4) the token is scaled by its routing weight *before* the expert, and not after.
    """
    from moe_core.dispatch import sort_by_expert

    top_k = topk_ids.shape[1]
    sorted_slots_N, counts_E = sort_by_expert(topk_ids, w1.shape[0])
    token_of_slot = sorted_slots_N // top_k
    x_sorted_MD = x_TD[token_of_slot]
    weights_N = topk_weights.reshape(-1)[sorted_slots_N].to(x_TD.dtype)
    if weight_on_input:
        x_sorted_MD = x_sorted_MD * weights_N[:, None]
    outputs = []
    for e, seg_MD in enumerate(torch.split(x_sorted_MD, counts_E.tolist())):
        if seg_MD.shape[0]:
            h_MH = F.linear(seg_MD, w1[e], None if b1 is None else b1[e])
            outputs.append(F.linear(act(h_MH), w2[e], None if b2 is None else b2[e]))
    y_MD = torch.cat(outputs) if outputs else x_TD.new_zeros(0, w2.shape[1])
    if not weight_on_input:
        y_MD = y_MD * weights_N[:, None]
    return torch.zeros_like(x_TD).index_add(0, token_of_slot, y_MD.to(x_TD.dtype))
