"""Lesson 1, What is MoE: the text plus four things to do.

After the sections named in `WIDGETS` (see lessons/content/lesson1/): the "800B for 100B" check
with a shared-fraction slider; the total/active parameter calculator over real models' configs
(`moe_core.params.count_params`, presets from `moe_core.model_cards`); the history timeline; and a
live `moe_core.SparseMoE` whose routing of eight tokens is redrawn as the learner moves top-k.
Each interactive panel is an `st.fragment`, so a slider reruns only its panel.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lessons.course.charts import show_chart
from lessons.course.figures import OKABE_ITO, human_count, human_flops
from lessons.course.render import render_sections
from lessons.lesson1_what_is_moe.calculator import render_calculator
from lessons.lesson1_what_is_moe.diagram import render_overview
from lessons.lesson1_what_is_moe.figures import params_bars, timeline
from lessons.lesson1_what_is_moe.live import render_live_moe
from lessons.lesson1_what_is_moe.same_budget import render_same_budget
from lessons.lesson1_what_is_moe.write import render_hero
from moe_core.model_cards import mixtral_like
from moe_core.params import count_params

__all__ = ["efficiency_numbers", "render_body", "render_hero"]

# The seed's example: a dense 100B model vs an MoE of 8 experts, top-1, "800B total".
DENSE_B, EFF_EXPERTS, EFF_TOP_K = 100.0, 8, 1
# A concrete dense ~100B transformer (d=10240, 79 layers, SwiGLU FFN 27392 ≈ 8d/3, MHA) whose FFNs
# are two thirds of its weights; with 8 experts top-1 count_params gives 566B total, 100B active.
EFF_CONFIG = {"d_model": 10240, "layers": 79, "d_ff": 27392}


def render_body() -> None:
    render_sections(1, {
        "sparse_activation": render_overview,
        "efficiency_example": render_efficiency,
        "calculator": render_calculator,
        "same_budget": render_same_budget,
        "history_modern": render_timeline,
        "live_moe": render_live_moe,
    })


# --- "800B for the price of 100B" ------------------------------------------------------------


def efficiency_numbers(shared_fraction: float, experts: int = EFF_EXPERTS,
                       top_k: int = EFF_TOP_K, dense_b: float = DENSE_B) -> tuple[float, float]:
    """(total, active) in billions when the FFN part of a dense model is copied into `experts`.

    N_shared = f·dense stays one copy; N_expert = (1-f)·dense per expert:
    total = N_shared + E·N_expert, active = N_shared + k·N_expert.
    """
    shared = shared_fraction * dense_b
    expert = (1.0 - shared_fraction) * dense_b
    return shared + experts * expert, shared + top_k * expert


@st.fragment
def render_efficiency() -> None:
    with st.container(border=True):
        st.markdown("**Try it: how much of the dense model is copied into the experts?**")
        pct = st.slider("Shared part (attention, embeddings, norms) of the dense 100B model, in %",
                        0, 60, 33, step=1, key="intro_eff_shared",
                        help="0 % is the idealised case: every weight sits inside an expert.")
        total, active = efficiency_numbers(pct / 100)
        fig = params_bars(
            ["Dense model", "MoE: active per token", "MoE: total stored"],
            [DENSE_B * 1e9, active * 1e9, total * 1e9],
            [OKABE_ITO["sky_blue"], OKABE_ITO["blue"], OKABE_ITO["orange"]],
            title=f"8 experts, top-1, {pct} % shared",
        )
        show_chart(fig, key="intro_eff_chart",
                   summary=f"Bars: dense 100B; MoE {active:.0f}B active and {total:.0f}B stored.")
        st.dataframe(pd.DataFrame({
            "": ["Parameters stored", "Parameters used per token", "Forward FLOPs per token"],
            "Dense 100B": ["100B", "100B", "≈ 200 GFLOPs"],
            "MoE, 8 experts, top-1": [f"{total:.0f}B", f"{active:.0f}B", "≈ 200 GFLOPs"],
        }), hide_index=True)
        st.caption(f"Notice: the active count stays at {active:.0f}B while the total falls from "
                   f"800B (0 % shared) to {total:.0f}B; 800B needs {_experts_for(800, pct / 100):.1f} "
                   "experts at this shared fraction.")
        with st.expander("Check it on a concrete config with count_params"):
            _concrete_efficiency()


def _experts_for(total_b: float, shared_fraction: float) -> float:
    """Experts needed to reach `total_b` at this shared fraction (inverse of efficiency_numbers)."""
    expert = (1.0 - shared_fraction) * DENSE_B
    return (total_b - shared_fraction * DENSE_B) / expert


@st.cache_data(show_spinner=False)
def _efficiency_rows() -> list[dict[str, str]]:
    rows = []
    for label, experts in (("Dense (1 expert)", 1), ("MoE, 8 experts, top-1", 8)):
        pc = count_params(mixtral_like(experts, 1, EFF_CONFIG["d_model"], EFF_CONFIG["d_ff"],
                                       EFF_CONFIG["layers"]))
        rows.append({"model": label, "total": human_count(pc.total), "active": human_count(pc.active),
                     "forward FLOPs / token": human_flops(pc.flops_per_token)})
    return rows


def _concrete_efficiency() -> None:
    c = EFF_CONFIG
    st.markdown(f"A dense transformer with width {c['d_model']}, {c['layers']} layers and a SwiGLU "
                f"FFN of width {c['d_ff']} (about 8/3 of the width, as in Llama) has about 100B "
                "parameters, two thirds of them in the FFNs. Turn each FFN into 8 experts with "
                "top-1 routing and count:")
    st.dataframe(pd.DataFrame(_efficiency_rows()), hide_index=True)
    st.caption("The count is `moe_core.params.count_params` on the two Mixtral-style configs; FLOPs "
               "are 2 × active non-embedding parameters.")


# --- history ---------------------------------------------------------------------------------

HISTORY: tuple[tuple[str, str, str], ...] = (
    ("1991", "Local experts", "Jacobs, Jordan, Nowlan & Hinton: a gate assigns cases to experts"),
    ("1994", "Hierarchical MoE", "Jordan & Jacobs: a tree of gates, fitted with EM"),
    ("2017", "Sparsely-gated MoE", "Shazeer et al.: top-k gating, up to 137B parameters (LSTM)"),
    ("2020", "GShard", "Lepikhin et al.: top-2 MoE transformer, 600B, expert capacity"),
    ("2021", "Switch", "Fedus et al.: top-1 routing, up to 1.6T parameters"),
    ("2021", "GLaM", "Du et al.: 1.2T total, about 97B active, 64 experts top-2"),
    ("2022", "ST-MoE", "Zoph et al.: router z-loss, stable training, 269B"),
    ("Dec 2023", "Mixtral 8x7B", "Mistral AI: open weights, 46.7B total, 12.9B active"),
    ("2024", "DeepSeekMoE / V2", "Fine-grained + shared experts; DeepSeek-V2 236B total, 21B active"),
    ("Mar 2024", "DBRX", "Databricks: 16 experts, top-4, 132B total, 36B active"),
    ("Dec 2024", "DeepSeek-V3", "671B total, 37B active, 256 experts, auxiliary-loss-free balancing"),
    ("Apr 2025", "Qwen3 MoE", "235B total, 22B active, 128 experts top-8, no shared expert"),
)


@st.cache_resource(show_spinner=False)
def _timeline_figure() -> go.Figure:
    dates, labels, details = zip(*HISTORY, strict=True)
    return timeline(dates, labels, details, title="From local experts to trillion-parameter MoEs")


def render_timeline() -> None:
    fig = _timeline_figure()  # static: built once per server
    show_chart(fig, key="intro_timeline",
               summary=f"Timeline of {len(HISTORY)} MoE milestones, {HISTORY[0][0]} to {HISTORY[-1][0]}; "
               "the same data is in the table below.")
    st.caption("Notice: sparse gating arrived in 2017; everything since has been about scale, "
               "stability and speed.")
    with st.expander("The timeline as a table"):
        st.dataframe(pd.DataFrame(HISTORY, columns=["year", "milestone", "what it brought"]),
                     hide_index=True)

