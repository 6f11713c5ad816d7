"""Lesson 2: how real model families route — the same token through each family's routing recipe.

The router logits of one token come from the course's language model (one of its layers); then
each family's recipe, as `moe_core.hf.load_block` runs it for
that family's transformers block (`FamilyMoEConfig` + `moe_core.router.TopKRouter`), turns the
same logits into a choice of experts and their weights. The recipes keep each family's options
(scoring, normalisation, groups, scaling, bias) but are shrunk to this model's 8 experts, so
group and k sizes are scaled down; the note of each row gives the real sizes and the source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st
import torch

from lessons.course.charts import show_chart
from lessons.course.lm_view import lm_available, route_text
from lessons.lesson2_router import figures as charts
from moe_core.config import FamilyMoEConfig
from moe_core.router import TopKRouter


@dataclass(frozen=True)
class Recipe:
    family: str
    options: dict  # FamilyMoEConfig fields beyond size (top_k, routing, renormalize, ...)
    note: str  # how it routes at full size, and where that is written down


RECIPES: tuple[Recipe, ...] = (
    Recipe("Mixtral", {"top_k": 2}, "softmax, top-2 of 8, renormalised (Jiang et al. 2024; "
           "transformers MixtralSparseMoeBlock)"),
    Recipe("Qwen3-MoE", {"top_k": 2, "renormalize": True, "topk_before_scoring": False},
           "softmax, top-8 of 128, renormalised when norm_topk_prob (true in Qwen3-30B-A3B's config)"),
    Recipe("OLMoE", {"top_k": 2, "renormalize": False},
           "softmax, top-8 of 64, not renormalised (norm_topk_prob false; Muennighoff et al. 2024)"),
    Recipe("Qwen2-MoE", {"top_k": 2, "renormalize": False},
           "softmax, top-4 of 60, not renormalised, plus one shared expert scaled by sigmoid(w·x) "
           "(transformers Qwen2MoeSparseMoeBlock)"),
    Recipe("DeepSeek-V2", {"top_k": 2, "renormalize": False, "n_group": 4, "topk_group": 2,
                           "group_scoring": "max", "routed_scaling_factor": 16.0},
           "softmax; top-6 of 160 inside the 3 best of 8 groups (a group scores its best expert); "
           "not renormalised; × routed_scaling_factor 16; 2 shared experts (DeepSeek-AI 2024, V2 config)"),
    Recipe("DeepSeek-V3", {"top_k": 2, "routing": "sigmoid_bias", "renormalize": True, "n_group": 4,
                           "topk_group": 2, "group_scoring": "top2_sum", "routed_scaling_factor": 2.5},
           "sigmoid scores + a selection-only bias (here 0); top-8 of 256 inside the 4 best of 8 groups "
           "(a group scores its top-2 sum); renormalised; × 2.5; 1 shared expert (DeepSeek-AI 2024, V3)"),
    Recipe("gpt-oss", {"top_k": 2, "renormalize": False, "topk_before_scoring": True, "router_bias": True},
           "router with a bias (here 0); top-4 of the logits (of 32 or 128 experts), then softmax over "
           "those 4 (transformers GptOssTopKRouter)"),
    Recipe("DBRX", {"top_k": 2, "renormalize": True, "renormalize_p": 1.0},
           "softmax, top-4 of 16, divided by the weights' L1 norm (moe_normalize_expert_weights = 1; "
           "transformers DbrxRouter)"),
    Recipe("Llama 4", {"top_k": 1, "routing": "sigmoid_topk", "renormalize": False},
           "top-1 of 16 or 128 by logit, weight sigmoid(logit) scales the expert's input, plus a shared "
           "expert (transformers Llama4TextMoe)"),
    Recipe("PhiMoE", {"top_k": 2, "routing": "sparsemixer"},
           "SparseMixer top-2 of 16 (eval mode: each weight a softmax over the experts near the best; "
           "Liu et al. 2024; transformers PhimoeSparseMoeBlock)"),
    Recipe("Switch", {"top_k": 1, "renormalize": False},
           "softmax, top-1, not renormalised, a fixed capacity per expert (Fedus et al. 2021)"),
)


def route_like(recipe: Recipe, gate_weight: torch.Tensor, hidden_TD: torch.Tensor):
    """The family's routing of `hidden_TD` with this model's gate weights (bias and correction 0)."""
    num_experts, hidden = gate_weight.shape
    config = FamilyMoEConfig(hidden_size=hidden, intermediate_size=1, num_experts=num_experts,
                             **recipe.options)  # fmt: skip
    router = TopKRouter(config).eval()
    with torch.no_grad():
        router.gate.weight.copy_(gate_weight)
        if router.gate.bias is not None:
            router.gate.bias.zero_()
        return router(hidden_TD)


@st.cache_data(max_entries=32, show_spinner=False)
def family_table(text: str, token: int, layer: int) -> pd.DataFrame:
    """One row per family: chosen experts, their weights, the weights' sum, and the note."""
    routed = route_text(text)
    logits_E = torch.from_numpy(routed.router_logits[layer][token])
    # Recover the layer's input from the logits' own linear map: only the gate and the recipe
    # matter, so a hidden state that gives these logits through W_r gives every family's answer.
    weight_ED = torch.eye(logits_E.numel())
    rows = []
    for recipe in RECIPES:
        routing = route_like(recipe, weight_ED, logits_E[None, :])
        ids = routing.topk_ids[0].tolist()
        weights = routing.topk_weights[0].tolist()
        order = np.argsort(ids)
        rows.append({
            "family": recipe.family,
            "experts chosen": ", ".join(f"E{ids[i]}" for i in order),
            "weights": ", ".join(f"{weights[i]:.3f}" for i in order),
            "sum": round(sum(weights), 3),
            "how it routes at full size (source)": recipe.note,
        })  # fmt: skip
    return pd.DataFrame(rows)


def weights_matrix(table: pd.DataFrame, num_experts: int) -> np.ndarray:
    """[families, E] weight of each expert in each family's choice (0 = not chosen)."""
    out = np.zeros((len(table), num_experts))
    for row, (experts, weights) in enumerate(zip(table["experts chosen"], table["weights"], strict=True)):
        for e, w in zip(experts.split(", "), weights.split(", "), strict=True):
            out[row, int(e[1:])] = float(w)
    return out


def families_panel() -> None:
    if not lm_available():
        st.info("The course's language model is not installed in this copy; this comparison needs it.")
        return
    text = st.session_state.get("router_lm_shown_text") or ""
    routed = route_text(text) if text.strip() else None
    if routed is None or len(routed.tokens) < 1:
        st.info("Pick a passage at the top of the page to compare how model families route it.")
        return
    shown = min(len(routed.tokens), 64)
    if st.session_state.get("router_family_token", 0) >= shown:
        st.session_state["router_family_token"] = 0
    with st.container(border=True):
        left, right = st.columns([3, 1])
        token = left.select_slider("Token of the passage", options=list(range(shown)),
                                   key="router_family_token",
                                   format_func=lambda i: f"{i}: {routed.tokens[i]!r}")  # fmt: skip
        layer = right.selectbox("Layer", list(range(len(routed.router_logits))), key="router_family_layer",
                                format_func=lambda i: f"layer {i + 1}")  # fmt: skip
        table = family_table(text, int(token), int(layer))
        matrix = weights_matrix(table, routed.router_logits[layer].shape[1])
        share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1e-12)  # scaling factors aside
        families = list(table["family"])
        fig = charts.share_heatmap(share, families, title="Share of the routed weight per expert")
        summary = "; ".join(f"{f}: {e}" for f, e in zip(families, table["experts chosen"], strict=True))
        show_chart(fig, key="router_family_chart", summary=f"Experts chosen for token {token} — {summary}.")
        st.dataframe(table, hide_index=True)
