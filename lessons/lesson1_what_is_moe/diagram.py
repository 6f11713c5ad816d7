"""Lesson 1's overview of one MoE layer, drawn from the live model for one token of the learner's text.

token → router (one score per expert) → top-k → the chosen experts → weighted sum (+ shared
experts, which this model has none of) → output, beside where the layer sits in a transformer
block. Every part is a link to the section of the course that explains it (Transformer Explainer's
approach), so the diagram doubles as a map of the course.

`layer_svg` is a pure function (numbers in, SVG text out) and escapes the one piece of learner
text it draws, the token; the panel wires it to the model.
"""

from __future__ import annotations

import html

import numpy as np
import streamlit as st

from lessons.course.figures import GREY, TEXT
from lessons.course.lm_view import EXPERT_TINTS, clean_text, lm_available, route_text
from lessons.course.scroll import section_link

# Part of the diagram -> (page URL path, heading anchor) of the section that explains it.
LINKS: dict[str, tuple[str, str]] = {
    "token": ("What_is_MoE", "inside-an-moe-layer"),
    "router": ("The_Router", "the-router-is-one-matrix"),
    "topk": ("The_Router", "top-k-and-whether-to-renormalise"),
    "dispatch": ("Experts_and_Sparse_Compute", "dispatch-sort-the-token-slots-by-expert"),
    "experts": ("Experts_and_Sparse_Compute", "what-an-expert-is-a-swiglu-feed-forward-block"),
    "combine": ("The_Router", "one-token-step-by-step"),
    "shared": ("MoE_at_Scale", "shared-experts-and-fine-grained-experts"),
    "balance": ("Load_Balancing", "why-routers-collapse-the-rich-get-richer"),
}


def _link(part: str, body: str, title: str) -> str:
    href = section_link(*LINKS[part])
    return (f'<a href="{href}" target="_self" aria-label="{html.escape(title)}">'
            f"<title>{html.escape(title)}</title>{body}</a>")  # fmt: skip


def layer_svg(token: str, probs: np.ndarray, topk_ids: list[int], weights: list[float], layer: int) -> str:
    """SVG of one MoE layer routing `token`: probs [E] (softmax), the chosen ids and their weights."""
    probs = np.asarray(probs, dtype=float)
    num_experts = probs.size
    if not topk_ids or len(topk_ids) != len(weights) or any(not 0 <= e < num_experts for e in topk_ids):
        raise ValueError("topk_ids must name experts 0..E-1, one weight each")
    shown = html.escape(token.replace("\n", "⏎") if token.strip() else repr(token), quote=True)
    row_h, top = 30, 20
    height = top + num_experts * row_h + 20
    chosen = ", ".join(map(str, topk_ids))
    label = html.escape(f"One MoE layer (layer {layer + 1}) routing the token {token!r}: router scores, "
                        f"top-{len(topk_ids)} experts {chosen}, weighted sum", quote=True)
    # role="group", not "img": its parts are links (an img must not contain interactive elements).
    parts = [f'<svg viewBox="0 0 760 {height}" width="100%" role="group" aria-label="{label}" '
             f'style="max-width:760px;font-family:sans-serif;font-size:13px" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{label}</title>']  # fmt: skip
    mid = top + num_experts * row_h / 2
    parts.append(_link("token", f'<rect x="4" y="{mid - 22}" width="110" height="44" rx="6" fill="#F1F3F6" '
                       f'stroke="{TEXT}"/><text x="59" y="{mid - 4}" text-anchor="middle" fill="{TEXT}">token'
                       f'</text><text x="59" y="{mid + 14}" text-anchor="middle" font-family="monospace" '
                       f'fill="{TEXT}">{shown[:14]}</text>', "The token: what enters the MoE layer"))
    # Router: one bar per expert (softmax probability).
    bars = "".join(
        f'<rect x="150" y="{top + e * row_h + 6}" width="{max(1.0, 90 * p):.1f}" height="16" '
        f'fill="{"#0072B2" if e in topk_ids else GREY}"/><text x="246" y="{top + e * row_h + 19}" '
        f'fill="{TEXT}" font-size="11">{p:.2f}</text>' for e, p in enumerate(probs)
    )
    frame_h = num_experts * row_h + 20
    router = (f'<rect x="140" y="{top - 14}" width="140" height="{frame_h}" rx="6" fill="#FFFFFF" '
              f'stroke="{TEXT}"/><text x="210" y="{top - 2}" text-anchor="middle" fill="{TEXT}">'
              f"router p = softmax(Wx)</text>{bars}")  # fmt: skip
    parts.append(_link("router", router, "The router: one score per expert"))
    parts.append(f'<line x1="114" y1="{mid}" x2="140" y2="{mid}" stroke="{TEXT}"/>')
    # Top-k: arrows from the router to the chosen experts, labelled with their weights.
    chosen = "".join(
        f'<line x1="280" y1="{top + e * row_h + 14}" x2="420" y2="{top + e * row_h + 14}" stroke="#0072B2" '
        f'stroke-width="{1 + 4 * w:.1f}"/><text x="350" y="{top + e * row_h + 10}" text-anchor="middle" '
        f'fill="{TEXT}">g = {w:.2f}</text>' for e, w in zip(topk_ids, weights, strict=True)
    )
    hit = f'<rect x="284" y="{top}" width="132" height="{num_experts * row_h}" fill="transparent"/>'
    label = (f'<text x="350" y="{height - 4}" text-anchor="middle" fill="{TEXT}">'
             f"top-{len(topk_ids)} of {num_experts}, renormalised</text>")  # fmt: skip
    parts.append(_link("topk", hit + chosen + label, "Top-k: keep the k best experts, renormalise weights"))
    experts = "".join(
        f'<rect x="420" y="{top + e * row_h + 2}" width="120" height="24" rx="4" '
        f'fill="{EXPERT_TINTS[e % 8] if e in topk_ids else "#FFFFFF"}" '
        f'stroke="{TEXT if e in topk_ids else GREY}"/>'
        f'<text x="480" y="{top + e * row_h + 19}" text-anchor="middle" '
        f'fill="{TEXT}">FFN{e}{" (idle)" if e not in topk_ids else ""}</text>' for e in range(num_experts)
    )
    parts.append(_link("experts", experts, "The experts: SwiGLU feed-forward blocks; only the chosen run"))
    # Weighted sum and output; shared experts (none in this model) drawn dashed.
    parts.append(_link("combine", f'<circle cx="620" cy="{mid}" r="26" fill="#F1F3F6" stroke="{TEXT}"/>'
                       f'<text x="620" y="{mid + 5}" text-anchor="middle" fill="{TEXT}">Σ g·FFN</text>',
                       "Weighted sum of the chosen experts' outputs"))  # fmt: skip
    parts += [f'<line x1="540" y1="{top + e * row_h + 14}" x2="594" y2="{mid}" stroke="#0072B2"/>'
              for e in topk_ids]
    shared = (f'<rect x="580" y="{top - 14}" width="80" height="34" rx="4" fill="none" stroke="{GREY}" '
              f'stroke-dasharray="4 3"/><text x="620" y="{top + 7}" text-anchor="middle" fill="{TEXT}" '
              f'font-size="11">shared: none</text>')  # fmt: skip
    parts.append(_link("shared", shared, "Shared experts: always on in DeepSeek and Qwen MoEs; none here"))
    parts.append(f'<line x1="646" y1="{mid}" x2="690" y2="{mid}" stroke="{TEXT}"/>'
                 f'<text x="724" y="{mid + 5}" text-anchor="middle" fill="{TEXT}">output</text>')
    parts.append(f'<text x="4" y="{height - 4}" fill="{TEXT}" font-size="11">layer {layer + 1}</text></svg>')
    return "".join(parts)


def block_svg() -> str:
    """Where the MoE layer sits: a decoder block, with the MoE layer in place of the dense FFN."""
    boxes = [("RMSNorm", None), ("attention", None), ("+", None), ("RMSNorm", None), ("MoE layer", "token"),
             ("+", None)]  # fmt: skip
    block = "A decoder block: norm, attention, residual add, norm, MoE layer, residual add"
    out = [f'<svg viewBox="0 0 760 60" width="100%" role="group" aria-label="{block}" '
           'style="max-width:760px;font-family:sans-serif;font-size:13px" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{block}</title>']  # fmt: skip
    for i, (name, part) in enumerate(boxes):
        x = 10 + i * 125
        box = (f'<rect x="{x}" y="12" width="105" height="34" rx="6" fill="'
               f'{"#B7D3E9" if part else "#F1F3F6"}" stroke="{TEXT}"/><text x="{x + 52}" y="34" '
               f'text-anchor="middle" fill="{TEXT}">{name}</text>')  # fmt: skip
        out.append(_link(part, box, "The MoE layer replaces the dense feed-forward block") if part else box)
        if i < len(boxes) - 1:
            out.append(f'<line x1="{x + 105}" y1="29" x2="{x + 125}" y2="29" stroke="{TEXT}"/>')
    out.append("</svg>")
    return "".join(out)


@st.fragment
def render_overview() -> None:
    """The panel: pick a token of the text the model wrote (or the default) and a layer."""
    if not lm_available():
        return
    written = st.session_state.get("intro_lm_written", {})
    text, _ = clean_text(written.get("text") or "def mean(values):\n    return sum(values) / len(values)\n")
    routed = route_text(text)
    if len(routed.tokens) == 0:
        return
    with st.container(border=True):
        st.markdown("**One MoE layer, live.** Every box is a link to the section that explains it.")
        st.markdown(block_svg(), unsafe_allow_html=True)  # SVG: built here; the token is escaped
        left, right = st.columns([3, 1])
        shown = min(len(routed.tokens), 64)
        if st.session_state.get("intro_diagram_token", 0) >= shown:  # the text changed under it
            st.session_state["intro_diagram_token"] = 0
        t = left.select_slider("Token", options=list(range(shown)), key="intro_diagram_token",
                               format_func=lambda i: f"{i}: {routed.tokens[i]!r}")  # fmt: skip
        layer = right.selectbox("Layer", list(range(len(routed.router_logits))), key="intro_diagram_layer",
                                format_func=lambda i: f"layer {i + 1}")  # fmt: skip
        logits = routed.router_logits[layer][t]
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        ids = [int(e) for e in np.argsort(-probs)[:2]]
        weights = [float(probs[e] / probs[ids].sum()) for e in ids]
        st.markdown(layer_svg(routed.tokens[t], probs, ids, weights, layer), unsafe_allow_html=True)
        st.caption(f"Token {routed.tokens[t]!r} in layer {layer + 1}: experts {ids[0]} and {ids[1]} run, "
                   f"with weights {weights[0]:.2f} and {weights[1]:.2f}; the other "
                   f"{probs.size - 2} experts do no work for it.")  # fmt: skip
