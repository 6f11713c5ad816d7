"""Lesson 1's calculator: total vs active parameters of real MoE models, and what-ifs.

A preset loads a real model's Hugging Face config (`moe_core.model_cards`); the sliders then edit
that config's own fields (each family names them differently, see `KNOB_FIELDS`), so DeepSeek keeps
its MLA attention and dense first layers while the learner changes E or k. "Custom" starts from a
Mixtral-style config (`mixtral_like`). Counting is `moe_core.params.count_params`, the same code
the tests hold to the model cards' published totals.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
import streamlit as st

from lessons.course.charts import show_chart
from lessons.course.figures import OKABE_ITO, human_count, human_flops
from lessons.course.predict import predict, reveal
from lessons.lesson1_what_is_moe.figures import params_bars
from moe_core.model_cards import MODEL_CARDS, ModelCard, mixtral_like
from moe_core.params import ParamCount, count_params, dense_equivalent

CUSTOM = "Custom (Mixtral-style)"
DEFAULT_PRESET = "mistralai/Mixtral-8x7B-v0.1"
_QWEN2_SHARED = "shared_expert_intermediate_size"  # Qwen2-MoE: one shared SwiGLU of this width

# Slider knob -> (label, min, max, step, help).
KNOBS: dict[str, tuple[str, int, int, int, str]] = {
    "experts": ("Routed experts E", 1, 256, 1, "Experts per MoE layer."),
    "top_k": ("Experts per token k", 1, 16, 1, "How many experts the router picks for each token."),
    "expert_ffn": ("Expert FFN width F", 128, 32768, 128, "Hidden width of one SwiGLU expert."),
    "layers": ("Layers L", 1, 128, 1, "Transformer blocks."),
    "shared": ("Shared experts", 0, 8, 1, "Always-on experts, each as wide as a routed one."),
    "d_model": ("Model width d", 128, 8192, 128, "Hidden size of the residual stream."),
}
# Where each knob lives in each family's config.json (a path; DBRX nests its MoE fields).
_COMMON = {"layers": ("num_hidden_layers",), "d_model": ("hidden_size",), "top_k": ("num_experts_per_tok",)}
KNOB_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "mixtral": {**_COMMON, "experts": ("num_local_experts",), "expert_ffn": ("intermediate_size",)},
    "qwen2_moe": {**_COMMON, "experts": ("num_experts",), "expert_ffn": ("moe_intermediate_size",),
                  "shared": (_QWEN2_SHARED,)},
    "qwen3_moe": {**_COMMON, "experts": ("num_experts",), "expert_ffn": ("moe_intermediate_size",)},
    "olmoe": {**_COMMON, "experts": ("num_experts",), "expert_ffn": ("intermediate_size",)},
    "dbrx": {"layers": ("n_layers",), "d_model": ("d_model",), "top_k": ("ffn_config", "moe_top_k"),
             "experts": ("ffn_config", "moe_num_experts"), "expert_ffn": ("ffn_config", "ffn_hidden_size")},
    "deepseek_v2": {**_COMMON, "experts": ("n_routed_experts",), "expert_ffn": ("moe_intermediate_size",),
                    "shared": ("n_shared_experts",)},
}
KNOB_FIELDS["deepseek_v3"] = KNOB_FIELDS["deepseek_v2"]


def knobs_of(config: Mapping[str, Any]) -> dict[str, int]:
    """The slider values that describe `config` (shared experts counted in expert-sized units)."""
    fields = KNOB_FIELDS[count_params(config).model_type]
    knobs = {name: int(_get(config, path)) for name, path in fields.items()}
    if "shared" in fields and fields["shared"] == (_QWEN2_SHARED,):
        knobs["shared"] = round(knobs["shared"] / knobs["expert_ffn"])
    knobs.setdefault("shared", 0)
    return knobs


def config_with(base: Mapping[str, Any] | None, knobs: Mapping[str, int]) -> dict[str, Any]:
    """`base` with the knobs written into its own fields; None means a Mixtral-style custom model."""
    if base is None:
        return mixtral_like(knobs["experts"], knobs["top_k"], knobs["d_model"], knobs["expert_ffn"],
                            knobs["layers"], knobs["shared"])
    config = copy.deepcopy(dict(base))  # MODEL_CARDS is shared: never write into it
    fields = KNOB_FIELDS[count_params(base).model_type]
    for name, path in fields.items():
        value = knobs[name]
        if path == (_QWEN2_SHARED,):
            value = knobs["shared"] * knobs["expert_ffn"]
        _set(config, path, value)
    return config


def _get(config: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for key in path[:-1]:
        config = config[key]
    return config.get(path[-1], 0)


def _set(config: dict[str, Any], path: tuple[str, ...], value: int) -> None:
    for key in path[:-1]:
        config = config[key]
    config[path[-1]] = value


# --- Streamlit -------------------------------------------------------------------------------


def _preset_label(name: str) -> str:
    return name if name == CUSTOM else name.split("/", 1)[1]


def _load_preset() -> None:
    """on_change of the preset box: move every slider to the preset's values."""
    name = st.session_state["intro_calc_preset"]
    base = None if name == CUSTOM else MODEL_CARDS[name].config
    knobs = knobs_of(base) if base else knobs_of(MODEL_CARDS[DEFAULT_PRESET].config)
    for knob, value in knobs.items():
        st.session_state[f"intro_calc_{knob}"] = value


SIZE_OPTIONS = ("8 × 7B = 56B", "About 47B", "About 13B", "7B")
COMPUTE_OPTIONS = ("It doubles", "It grows a little (only the router's scores)",
                   "It stays exactly the same", "It halves")  # fmt: skip


def size_outcome(total: float) -> str:
    """Which of SIZE_OPTIONS Mixtral's counted total (parameters) is."""
    return min(SIZE_OPTIONS, key=lambda o: abs({"8 × 7B = 56B": 56e9, "About 47B": 47e9, "About 13B": 13e9,
                                                "7B": 7e9}[o] - total))  # fmt: skip


def compute_outcome(ratio: float) -> str:
    """Which of COMPUTE_OPTIONS a FLOPs ratio (16 experts over 8, k = 2) is."""
    if ratio > 1.5:
        return COMPUTE_OPTIONS[0]
    if ratio > 1.0 + 1e-9:
        return COMPUTE_OPTIONS[1]
    return COMPUTE_OPTIONS[2] if ratio >= 1.0 - 1e-9 else COMPUTE_OPTIONS[3]


def _predictions() -> None:
    """Two misconceptions, each answered by the calculator below it."""
    predict(1, "mixtral_size", "Mixtral **8x7B** has eight experts of the size of a 7B model's "
            "feed-forward blocks. How many parameters does it store?", SIZE_OPTIONS)  # fmt: skip
    predict(1, "more_experts", "Give Mixtral 16 experts instead of 8 and keep k = 2. What happens to "
            "its compute per token? Try it with the E slider.", COMPUTE_OPTIONS)  # fmt: skip


def _reveals(knobs: dict[str, int]) -> None:
    mixtral = MODEL_CARDS[DEFAULT_PRESET].config
    total = count_params(mixtral).total
    reveal(1, "mixtral_size", size_outcome(total),
           f"count_params on Mixtral's config gives {human_count(total)} (the release post says 46.7B): "
           "only the feed-forward blocks are copied eight times; attention, embeddings and norms are "
           "stored once.")  # fmt: skip
    if st.session_state.get("intro_calc_preset") == DEFAULT_PRESET and knobs["experts"] != 8:
        st.session_state["intro_calc_tried_experts"] = True
    if st.session_state.get("intro_calc_tried_experts"):
        more = count_params(config_with(mixtral, {**knobs_of(mixtral), "experts": 16}))
        ratio = more.flops_per_token / count_params(mixtral).flops_per_token
        reveal(1, "more_experts", compute_outcome(ratio),
               f"With 16 experts Mixtral's forward pass costs {ratio:.5f}× as much per token: each "
               "token still runs 2 experts; only the router scores 16 experts instead of 8. The total "
               f"grows to {human_count(more.total)}: more experts cost memory, not compute.")  # fmt: skip


@st.fragment
def render_calculator() -> None:
    if "intro_calc_experts" not in st.session_state:
        st.session_state["intro_calc_preset"] = DEFAULT_PRESET
        _load_preset()
    _predictions()
    with st.container(border=True):
        st.markdown("**Parameter and FLOP calculator**")
        name = st.selectbox("Start from", [CUSTOM, *MODEL_CARDS], key="intro_calc_preset",
                            format_func=_preset_label, on_change=_load_preset)
        card = MODEL_CARDS.get(name)
        base = card.config if card else None
        allowed = set(KNOB_FIELDS[count_params(base).model_type]) if base else set(KNOBS)
        knobs = _sliders(allowed)
        if knobs["top_k"] > knobs["experts"]:
            st.info(f"k cannot exceed E: using k = {knobs['experts']}.", icon=":material/info:")
            knobs["top_k"] = knobs["experts"]
        config = config_with(base, knobs)
        pc = count_params(config)
        unchanged = card is not None and knobs == knobs_of(base)
        _show_result(pc, config, card if unchanged else None)
    _reveals(knobs)


def _sliders(allowed: set[str]) -> dict[str, int]:
    knobs: dict[str, int] = {}
    columns = st.columns(2)
    for i, (knob, (label, lo, hi, step, help_text)) in enumerate(KNOBS.items()):
        disabled = knob not in allowed
        if disabled:
            help_text += " This architecture has no shared experts."
            st.session_state[f"intro_calc_{knob}"] = 0 if knob == "shared" else lo
        with columns[i % 2]:
            knobs[knob] = st.slider(label, lo, hi, step=step, key=f"intro_calc_{knob}",
                                    help=help_text, disabled=disabled)
    return knobs


def _show_result(pc: ParamCount, config: Mapping[str, Any], card: ModelCard | None) -> None:
    dense = dense_equivalent(config)
    cols = st.columns(4)
    cols[0].metric("Total parameters", human_count(pc.total), help="Every weight stored: the memory bill.")
    cols[1].metric("Active per token", human_count(pc.active), help="The weights one token uses.")
    cols[2].metric("Forward FLOPs / token", human_flops(pc.flops_per_token),
                   help="2 × active non-embedding parameters (attention over the context not included).")
    cols[3].metric("Active fraction", f"{pc.active / pc.total:.1%}")
    fig = params_bars(
        ["MoE: total stored", "MoE: active per token", "Dense model of equal compute"],
        [pc.total, pc.active, dense.params],
        [OKABE_ITO["orange"], OKABE_ITO["blue"], OKABE_ITO["sky_blue"]],
    )
    show_chart(fig, key="intro_calc_chart",
               summary=f"Bars: {human_count(pc.total)} stored, {human_count(pc.active)} active per token, "
               f"{human_count(dense.params)} for a dense model of equal compute.")
    rows = [
        ("Total parameters", human_count(pc.total), f"{card.total_b:g}B" if card else "–"),
        ("Active parameters per token", human_count(pc.active), f"{card.active_b:g}B" if card else "–"),
        ("Forward FLOPs per token", human_flops(pc.flops_per_token), "–"),
        ("Routed experts: all / per token", f"{pc.routed_experts / pc.total:.0%} / "
         f"{pc.active_routed_experts / pc.active:.0%} of the weights", "–"),
        ("Dense model of equal compute", f"{human_count(dense.params)} (FFN width {dense.ffn_width:,})", "–"),
        ("Memory per unit of compute vs dense", f"{dense.memory_ratio:.1f}×", "–"),
        ("Expert combinations C(E, k) per layer", f"{math.comb(pc.num_experts, pc.top_k):,}", "–"),
    ]
    table = pd.DataFrame(rows, columns=["quantity", "this configuration", "model card"])
    if card is None:
        table = table.drop(columns="model card")
    st.dataframe(table, hide_index=True)
    if card is not None:
        st.caption(f"Model card: “{card.card_quote}” ([card]({card.card_url}), "
                   f"[config.json]({card.config_url})).")
    st.caption("Notice: changing E moves memory (the total); changing k moves compute (the FLOPs).")
