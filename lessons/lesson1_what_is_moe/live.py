"""Lesson 1's live MoE: eight tokens routed by a real `moe_core.SparseMoE`, redrawn as k changes.

The layer is tiny (D = 16, 8 SwiGLU experts of width 32) and built from a fixed seed, so every
learner sees the same router and a given k always gives the same picture; it is rebuilt per k
with the same weights (the router's weights do not depend on k). The slider's value is kept in the
URL as `?intro_k=` so a reload or a shared link shows the same routing; a bad value there is
replaced by the default, and an out-of-range one clamped, each with a one-line notice.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from lessons.course.charts import show_chart
from lessons.course.url_state import show_notices, url_number, write_url
from lessons.lesson1_what_is_moe.figures import routing_heatmap, routing_lines
from moe_core import MoEConfig, SparseMoE

TOKENS = ("The", "cat", "sat", "on", "a", "warm", "mat", ".")  # T = 8
HIDDEN, FFN, EXPERTS = 16, 32, 8  # D, F, E
DEFAULT_K, SEED = 2, 0
PARAM, KEY = "intro_k", "intro_live_k"


@st.cache_resource(show_spinner=False, max_entries=EXPERTS)
def live_layer(top_k: int) -> SparseMoE:
    """The lesson's layer for this k (cached: shared, read-only; never train or mutate it)."""
    with torch.random.fork_rng(devices=[]):  # leave the global RNG of other code untouched
        torch.manual_seed(SEED)
        layer = SparseMoE(MoEConfig(hidden_size=HIDDEN, intermediate_size=FFN, num_experts=EXPERTS,
                                    top_k=top_k, renormalize=True))
    return layer.eval()


def token_vectors() -> torch.Tensor:
    """[T, D] fixed token vectors (a stand-in for embeddings; scaled so routing is decisive)."""
    generator = torch.Generator().manual_seed(SEED + 1)
    return 3.0 * torch.randn(len(TOKENS), HIDDEN, generator=generator)


def route(top_k: int) -> np.ndarray:
    """[T, E] gate weights of the live layer at this k (0 where an expert was not chosen)."""
    with torch.inference_mode():
        out = live_layer(top_k)(token_vectors())
    weights = torch.zeros(len(TOKENS), EXPERTS)
    weights.scatter_(1, out.topk_ids, out.topk_weights.float())
    return weights.numpy()


@st.cache_resource(show_spinner=False, max_entries=EXPERTS)
def live_view(top_k: int) -> tuple[np.ndarray, go.Figure, go.Figure]:
    """Weights and both figures for this k, built once per server (shared, read-only)."""
    weights = route(top_k)
    return weights, routing_lines(weights, TOKENS), routing_heatmap(weights, TOKENS)


def _sync_url() -> None:
    st.query_params[PARAM] = str(st.session_state[KEY])


@st.fragment
def render_live_moe() -> None:
    if KEY not in st.session_state:  # first draw: take k from the URL, once
        from_url = url_number(PARAM, DEFAULT_K, 1, EXPERTS)
        st.session_state[KEY] = from_url.value
        if from_url.notice:
            show_notices(from_url)
            write_url(**{PARAM: from_url.value})
    with st.container(border=True):
        st.markdown("**A live MoE layer: 8 tokens, 8 experts**")
        k = st.slider("top-k: experts per token", 1, EXPERTS, key=KEY, on_change=_sync_url)
        weights, lines_fig, heat_fig = live_view(k)
        lines, heat = st.tabs(["Token → expert lines", "Token × expert weights"])
        with lines:
            show_chart(lines_fig, key="intro_live_lines",
                       summary=f"Each of {len(TOKENS)} tokens is linked to its {k} chosen experts.")
        with heat:
            show_chart(heat_fig, key="intro_live_heat",
                       summary=f"Gate weights, {len(TOKENS)} tokens by {EXPERTS} experts: {k} non-zero "
                       "weights per row, each row summing to 1.")
        used = int((weights > 0).any(axis=0).sum())
        cols = st.columns(3)
        cols[0].metric("Expert evaluations", f"{len(TOKENS) * k}", help="tokens × k")
        cols[1].metric("A dense layer would do", f"{len(TOKENS) * EXPERTS}", help="tokens × E")
        cols[2].metric("Experts used by some token", f"{used} / {EXPERTS}")
        st.caption(f"Sparse work is k/E = {k}/{EXPERTS} = {k / EXPERTS:.0%} of the dense layer's. "
                   "Notice: raising k only adds lines; the experts already chosen stay chosen.")
