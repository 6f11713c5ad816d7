"""Lesson 2's first screen: the router of a real MoE language model, on text the learner picks.

The course's model (`moe_core.lm`, a small Mixtral trained here on Python's standard library and
its documentation) routes every token of the passage in each of its layers; the passage is drawn
with each token coloured by its top-1 expert, one row per layer. Sliders for k, the router's
temperature and its noise reroute the same model at inference and show what each costs in
next-token loss, measured on the passage itself.

Widget values live in the URL (`router_lm_*`) like the rest of the lesson.
"""

from __future__ import annotations

import streamlit as st

from lessons.course.lm_view import (
    MAX_CHARS,
    clean_text,
    example_passages,
    get_lm,
    lm_available,
    passage_html,
    passage_summary,
    route_text,
)
from lessons.course.predict import predict, reveal
from lessons.course.url_state import url_choice, url_number, write_url

HERO = "router_lm"
OWN_TEXT = "Your own text"
TRAINED_K = 2  # the shipped model was trained with top-2 of 8 (config.json: num_experts_per_tok)
K1_OPTIONS = ("It rises by more than 0.5 bits per token", "It rises by up to 0.5 bits per token",
              "It stays the same", "It falls")  # fmt: skip


def _init_state(passages: dict[str, str]) -> None:
    """Seed missing widget values from the URL (they vanish when a widget is not drawn)."""
    options = [*passages, OWN_TEXT]
    if "router_lm_pick" not in st.session_state:
        st.session_state["router_lm_pick"] = url_choice("router_lm_pick", options[0], options).value
    if "router_lm_k" not in st.session_state:
        st.session_state["router_lm_k"] = url_number("router_lm_k", TRAINED_K, 1, 8).value
    for key, default, lo, hi in (("router_lm_tau", 1.0, 0.1, 5.0), ("router_lm_noise", 0.0, 0.0, 3.0)):
        if key not in st.session_state:
            st.session_state[key] = url_number(key, default, lo, hi, integer=False).value
    # The text box is not drawn while a shipped passage is picked, so its value is kept apart.
    st.session_state.setdefault("router_lm_saved", "")
    st.session_state.setdefault("router_lm_text", st.session_state["router_lm_saved"])


def _keep_text() -> None:
    st.session_state["router_lm_saved"] = st.session_state["router_lm_text"]


@st.fragment
def render_hero() -> None:
    """The live model first: a passage, its routing per layer, and k with its cost in loss."""
    if not lm_available():
        st.info("The course's language model is not installed in this copy of MoE Lab "
                "(moe_core/weights/lm); the rest of the lesson works without it.")  # fmt: skip
        return
    passages = example_passages()
    _init_state(passages)
    with st.container(border=True):
        st.markdown("**A real MoE language model routes your text.** Each token is coloured by the "
                    "expert that scored it highest, in each of the model's four MoE layers.")  # fmt: skip
        pick = st.selectbox("Passage (held out from training)", [*passages, OWN_TEXT], key="router_lm_pick")
        c1, c2, c3 = st.columns(3)
        k = c1.slider("Experts per token, k", 1, 8, key="router_lm_k",
                      help=f"Trained with k = {TRAINED_K}; other values reroute it.")  # fmt: skip
        tau = c2.slider("Router temperature τ", 0.1, 5.0, step=0.1, key="router_lm_tau",
                        help="Softmax of logits / τ. Trained with τ = 1.")  # fmt: skip
        sigma = c3.slider("Router noise σ", 0.0, 3.0, step=0.1, key="router_lm_noise",
                          help="Gaussian noise added to the logits before top-k (a fixed seed). Trained "
                               "without noise.")  # fmt: skip
        if pick == OWN_TEXT:
            raw = st.text_area("Your text (code or English)", key="router_lm_text", on_change=_keep_text,
                               placeholder="def mean(xs):\n    return sum(xs) / len(xs)")  # fmt: skip
        else:
            raw = passages.get(pick, "")
        text, notices = clean_text(raw)
        st.session_state["router_lm_shown_text"] = text  # the families panel routes the same text
        for note in notices:
            st.caption(note)
        write_url(router_lm_pick=pick, router_lm_k=k, router_lm_tau=round(tau, 2),
                  router_lm_noise=round(sigma, 2))
        if not text.strip():
            return
        routed = route_text(text, top_k=int(k), temperature=float(tau), noise_std=float(sigma))
        if not routed.tokens:
            return
        st.html(passage_html(routed))
        st.caption(passage_summary(routed))
        _loss_line(text, routed.bits, int(k), float(tau), float(sigma))
        _k1_prediction(text, int(k))


def k1_outcome(change_bits: float) -> str:
    """Which of K1_OPTIONS a measured loss change (k = 1 minus k = 2, bits per token) is."""
    if change_bits > 0.5:
        return K1_OPTIONS[0]
    if change_bits > 0.005:
        return K1_OPTIONS[1]
    return K1_OPTIONS[2] if change_bits >= -0.005 else K1_OPTIONS[3]


def _k1_prediction(text: str, k: int) -> None:
    """Predict, then try: what routing each token to one expert instead of two does to the loss."""
    if k == 1:
        st.session_state["router_lm_tried_k1"] = True
    predict(2, "k1_loss", "The model was trained sending each token to 2 experts. If each token "
            "goes to only its best expert (k = 1), what happens to the next-token loss on this "
            "passage? Then move the slider to 1.", K1_OPTIONS)  # fmt: skip
    if not st.session_state.get("router_lm_tried_k1"):
        return
    one, two = route_text(text, top_k=1).bits, route_text(text, top_k=TRAINED_K).bits
    if one is None or two is None:
        return
    reveal(2, "k1_loss", k1_outcome(one - two),
           f"On this passage the loss went from {two:.2f} to {one:.2f} bits per token ({one - two:+.2f}). "
           "Routing is part of what the model learned: its layers were trained to add two experts' "
           "outputs, weighted; with one expert each layer's output is no longer what the next layer "
           "was trained on. A smaller k saves compute only if the model was trained for it.")  # fmt: skip


def _loss_line(text: str, bits: float | None, k: int, tau: float = 1.0, sigma: float = 0.0) -> None:
    if bits is None:
        st.caption("Two or more tokens are needed to measure the next-token loss.")
        return
    trained = route_text(text, top_k=TRAINED_K).bits
    model, _ = get_lm()
    experts = model.config.num_local_experts
    if k == TRAINED_K and abs(tau - 1.0) < 1e-9 and sigma == 0:
        st.markdown(f"Next-token loss on this passage: **{bits:.2f} bits per token**, with each token "
                    f"sent to {k} of {experts} experts, as in training.")  # fmt: skip
        return
    change = bits - trained
    settings = ", ".join([f"k = {k}"] + ([f"τ = {tau:g}"] if abs(tau - 1.0) > 1e-9 else [])
                         + ([f"σ = {sigma:g}"] if sigma else []))  # fmt: skip
    st.markdown(f"Next-token loss with {settings}: **{bits:.2f} bits per token**, against {trained:.2f} "
                f"with k = {TRAINED_K}, τ = 1 and no noise, as trained ({change:+.2f}). Compute per token "
                "grows with k alone; temperature reshapes the weights of the chosen experts and noise "
                "changes which are chosen, both at no compute cost; the loss tells what each does.")


__all__ = ["HERO", "MAX_CHARS", "render_hero"]
