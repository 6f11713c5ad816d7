"""Lesson 5's first screen: a real model's stored versus used parameters, and what a batch touches.

The misconception it answers: "only the active experts need memory". Per token an MoE computes
with k experts, but a batch of tokens touches nearly all of them, so every expert's weights must be
in memory to serve it. Sizes come from `moe_core.params.count_params` on each model's config.
"""

from __future__ import annotations

import streamlit as st

from lessons.course.charts import show_chart
from lessons.course.predict import predict, reveal
from lessons.course.url_state import url_choice, url_number, write_url
from lessons.lesson5_scale import figures as charts
from lessons.lesson5_scale.calc import experts_touched
from moe_core.model_cards import MODEL_CARDS, MORE_MODEL_CARDS
from moe_core.params import count_params

CARDS = {**MODEL_CARDS, **MORE_MODEL_CARDS}  # every family count_params knows
MODELS = tuple(CARDS)
DEFAULT_MODEL = "deepseek-ai/DeepSeek-V3" if "deepseek-ai/DeepSeek-V3" in CARDS else MODELS[0]
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
BYTES_BF16 = 2
TOUCH_OPTIONS = ("About 8: one token's worth", "About 64", "About 128, half of them", "Nearly all 256")


@st.fragment
def render_hero() -> None:
    if "scale_hero_model" not in st.session_state:
        st.session_state["scale_hero_model"] = url_choice("scale_hero_model", DEFAULT_MODEL, MODELS).value
    if "scale_hero_batch" not in st.session_state:
        raw = int(url_number("scale_hero_batch", 1, 1, BATCHES[-1]).value)
        st.session_state["scale_hero_batch"] = min(BATCHES, key=lambda b: abs(b - raw))
    with st.container(border=True):
        st.markdown("**A real MoE in memory and in compute.** Pick a model and a batch size.")
        left, right = st.columns([3, 2])
        model = left.selectbox("Model", MODELS, key="scale_hero_model")
        batch = right.select_slider("Tokens in a batch", BATCHES, key="scale_hero_batch")
        pc = count_params(CARDS[model].config)
        touched = [experts_touched(pc.num_experts, pc.top_k, b) for b in BATCHES]
        now = touched[BATCHES.index(batch)]
        fig = charts.experts_touched_curve(pc.num_experts, pc.top_k, BATCHES, touched, batch,
                                           title=f"{model.split('/')[-1]}: experts one layer's batch touches")
        show_chart(fig, key="scale_hero_chart",
                   summary=f"With {_tokens(batch)}, about {now:.0f} of {pc.num_experts} routed experts per "
                           f"layer are used at least once (each token uses {pc.top_k}), if the router "
                           "spread tokens evenly.")  # fmt: skip
        st.markdown(
            f"Stored: **{pc.total / 1e9:,.1f}B parameters** ({pc.total * BYTES_BF16 / 1e9:,.0f} GB in BF16). "
            f"Used per token: **{pc.active / 1e9:,.1f}B** ({pc.active / pc.total:.0%}). A batch of "
            f"{_tokens(batch)} reaches about {now / pc.num_experts:.0%} of the experts and the next "
            f"batch reaches others, so all {pc.total * BYTES_BF16 / 1e9:,.0f} GB must stay in memory "
            f"even though each token computes with {pc.active / 1e9:,.1f}B."
        )
        write_url(scale_hero_model=model, scale_hero_batch=batch)
        _touch_prediction()


def _tokens(n: int) -> str:
    return f"{n:,} token" + ("" if n == 1 else "s")


def touched_outcome(touched: float) -> str:
    """Which of TOUCH_OPTIONS an expected count of touched experts (of 256) is closest to."""
    centres = (8, 64, 128, 256)
    return TOUCH_OPTIONS[min(range(4), key=lambda i: abs(centres[i] - touched))]


def _touch_prediction() -> None:
    """Predict, then try: how many of DeepSeek-V3's 256 experts a batch of 256 tokens touches."""
    predict(5, "batch_touches", "DeepSeek-V3 sends each token to 8 of its 256 routed experts. In a "
            "batch of 256 tokens, how many experts of one layer get at least one token? Then pick "
            "DeepSeek-V3 and a batch of 256 above.", TOUCH_OPTIONS)  # fmt: skip
    state = st.session_state
    if state.get("scale_hero_model") == DEFAULT_MODEL and state.get("scale_hero_batch") == 256:
        state["scale_hero_tried"] = True
    if not st.session_state.get("scale_hero_tried"):
        return
    pc = count_params(CARDS[DEFAULT_MODEL].config)
    touched = experts_touched(pc.num_experts, pc.top_k, 256)
    reveal(5, "batch_touches", touched_outcome(touched),
           f"About {touched:.0f} of {pc.num_experts}, if the router spreads tokens evenly (and still "
           "most of them when it does not). Each token computes with 8 experts, but to serve a "
           "batch every expert's weights must be in memory: an MoE saves compute, not memory.")  # fmt: skip
