"""Lesson 2 body: the router, driven live by a small trained MoE (`moe_core.router_demo`).

Four panels follow the section order of `lessons/content/README.md`:

    router_heatmap      pick or type a sentence -> token x expert heatmap (probabilities or logits)
    token_step_through  one token: logits -> softmax -> top-k -> renormalise -> weighted sum
    routing_sliders     k, temperature, noise (with seed), renormalise -> heatmap, gate weights, load
    routing_comparison  one batch routed by top-1, top-2 and expert choice, load bars side by side

Each panel is an `st.fragment` with a key, so a slider reruns only its panel. The sentence feeds the
first three panels and the sliders feed the step-through, so those widgets' callbacks rerun exactly
the panels that depend on them (`st.rerun([...keys])`), never the whole page. Widget values live in
the URL (`router_*`), read once per session through `lessons.course.url_state`, which clamps bad values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
import torch

from lessons.course.charts import show_chart
from lessons.course.models import get_model
from lessons.course.render import md_escape, render_sections
from lessons.course.url_state import (
    UrlValue,
    forget_notice_and_rerun,
    show_stored_notices,
    url_choice,
    url_flag,
    url_number,
    write_url,
)
from lessons.lesson2_router import figures as charts
from lessons.lesson2_router.experts_learn import what_experts_learn_panel
from lessons.lesson2_router.families import families_panel
from lessons.lesson2_router.real_model import render_hero
from moe_core.router import expert_choice, softmax_topk
from moe_core.router_demo import (
    SpecialisationReport,
    TokenStep,
    evaluate_specialisation,
    explain_token,
    route_tokens,
    router_noise,
)
from moe_core.text_data import DOMAINS, EXAMPLES

HEATMAP, STEP, SLIDERS, COMPARE = "router_heatmap", "router_step", "router_sliders", "router_compare"
CUSTOM = "Your own sentence"
FAMILIES_DIVE = "router_dive_families"
# Optional reading, collapsed, and built only once opened: the family comparison is not among the
# lesson's goals, and its table, chart and two widgets were a tenth of the page's draw on a revisit
# (bench/RESULTS.md).
DEEP_DIVES = {"how_real_models_route": ("Optional deep dive: one token through eleven families' routers",
                                        FAMILIES_DIVE, ":material/alt_route:")}  # fmt: skip
VIEWS = ("probabilities", "logits")
MAX_TEXT = 300  # characters of a typed sentence kept (and put in the URL)
SHOWN_DIMS = 6  # expert-output dimensions printed in the step-through (of D = 32)

# Every URL-backed widget: key -> how to read it from the URL (default, range).
NUMBERS = {
    "router_k": (2, 1, 8, True),
    "router_temperature": (1.0, 0.1, 5.0, False),
    "router_noise": (0.0, 0.0, 3.0, False),
    "router_seed": (0, 0, 9999, True),
    "router_token": (1, 0, charts.MAX_HEATMAP_TOKENS - 1, True),
    "router_ec_cf": (2.0, 0.5, 4.0, False),
}


@st.cache_resource(show_spinner=False)
def get_report() -> SpecialisationReport:
    return evaluate_specialisation(get_model())


@st.cache_data(max_entries=128, show_spinner=False)
def encode(text: str) -> tuple[list[str], list[bool], np.ndarray]:
    """Words (at most MAX_HEATMAP_TOKENS), whether each is in the vocabulary, router inputs [T, D]."""
    model = get_model()
    words, ids, x_TD = model.sentence_hidden(text)
    keep = charts.MAX_HEATMAP_TOKENS
    return words[:keep], [i != model.tokenizer.unk_id for i in ids[:keep]], x_TD[:keep].numpy()


def render_body() -> None:
    _init_state()
    render_sections(2, {"router_logits": heatmap_panel, "worked_example": step_panel,
                        "noisy_topk": sliders_panel, "expert_choice": comparison_panel,
                        "how_real_models_route": families_panel,
                        "what_experts_learn": what_experts_learn_panel},
                    deep_dives=DEEP_DIVES)  # fmt: skip


# --- state: URL in, notices out ----------------------------------------------------------------


def _init_state() -> None:
    """Seed each missing widget value from the URL (the widget owns it while it is drawn).

    Called by the page and again at the top of every panel: Streamlit deletes a widget's value
    after any run that does not draw it (the token slider is hidden while the sentence is empty),
    and a panel can rerun alone, so a value may vanish between two runs of one panel. The URL
    keeps the last value, so re-seeding from it restores exactly what the learner had.
    """
    notices: dict[str, str] = st.session_state.setdefault("router_notices", {})
    parsed: dict[str, UrlValue] = {k: url_number(k, *spec) for k, spec in NUMBERS.items()}
    parsed["router_renorm"] = url_flag("router_renorm", True)
    parsed["router_view"] = url_choice("router_view", VIEWS[0], VIEWS)
    raw_text = st.query_params.get("router_text")
    text = raw_text[:MAX_TEXT] if raw_text else EXAMPLES[next(iter(EXAMPLES))]
    parsed["router_text"] = UrlValue(text, "the sentence was cut to 300 characters"
                                     if raw_text and len(raw_text) > MAX_TEXT else None)  # fmt: skip
    for key, value in parsed.items():
        if key not in st.session_state:
            st.session_state[key] = value.value
            if value.notice:
                notices[key] = value.notice
    if "router_example" not in st.session_state:
        st.session_state["router_example"] = _example_for(st.session_state["router_text"])


def _example_for(text: str) -> str:
    return next((name for name, sentence in EXAMPLES.items() if sentence == text), CUSTOM)


def _notices(*keys: str) -> None:
    show_stored_notices("router_notices", *keys)


def _changed(key: str, panels: list[str]) -> None:
    forget_notice_and_rerun("router_notices", key, panels)


def _on_example() -> None:
    if st.session_state["router_example"] != CUSTOM:
        st.session_state["router_text"] = EXAMPLES[st.session_state["router_example"]]
    _changed("router_text", [HEATMAP, STEP, SLIDERS])


def _on_text() -> None:
    st.session_state["router_text"] = st.session_state["router_text"][:MAX_TEXT]
    st.session_state["router_example"] = _example_for(st.session_state["router_text"])
    _changed("router_text", [HEATMAP, STEP, SLIDERS])


def _settings() -> dict:
    s = st.session_state
    return {"top_k": int(s["router_k"]), "temperature": float(s["router_temperature"]),
            "noise_std": float(s["router_noise"]), "noise_seed": int(s["router_seed"]),
            "renormalize": bool(s["router_renorm"])}  # fmt: skip


def _sentence() -> tuple[list[str], list[bool], torch.Tensor]:
    words, known, x = encode(st.session_state["router_text"])
    return words, known, torch.from_numpy(x)


# --- panel 1: the heatmap of a sentence ------------------------------------------------------


def heatmap_panel() -> None:
    """The sentence's heatmap (a fragment: what the sentence and view change), then the router's
    specialisation, which does not change with them, drawn by the page around it."""
    with st.container(border=True):
        _heatmap_live()
        _specialisation_note()


@st.fragment(key=HEATMAP)
def _heatmap_live() -> None:
    _init_state()
    left, right = st.columns([2, 3])
    left.selectbox("Pick an example", [*EXAMPLES, CUSTOM], key="router_example", on_change=_on_example)
    right.text_input("…or type a sentence", key="router_text", max_chars=MAX_TEXT, on_change=_on_text,
                     help="Words outside the course's vocabulary are routed as <unk>.")  # fmt: skip
    _notices("router_text", "router_view")
    words, known, x_TD = _sentence()
    if not words:
        st.info("Type at least one word to see how the router sends it to experts.")
        return
    if len(model_words := get_model().tokenizer.split(st.session_state["router_text"])) > len(words):
        st.caption(f"Only the first {len(words)} of {len(model_words)} words are routed here.")
    unknown = sorted({w for w, ok in zip(words, known, strict=True) if not ok})
    if unknown:
        st.caption("Not in the vocabulary, routed as <unk>: " + md_escape(", ".join(unknown)))
    view = st.segmented_control("Colour the cells by", VIEWS, key="router_view", required=True,
                                on_change=_changed, args=("router_view", [HEATMAP]))  # fmt: skip
    routing = route_tokens(get_model(), x_TD, top_k=2)
    values = routing.router_probs if view == "probabilities" else routing.router_logits
    fig = charts.router_heatmap(values.numpy(), words, routing.topk_ids.numpy(),
                                kind="probability" if view == "probabilities" else "logit",
                                title="Toy topic router: scores (top-2 outlined)")  # fmt: skip
    pairs = zip(words, routing.topk_ids.tolist(), strict=True)
    picks = ", ".join(f"{w} → E{a}, E{b}" for w, (a, b) in pairs)
    show_chart(fig, key="router_heatmap_chart", summary=f"Each word's top-2 experts: {picks}.")
    st.caption("Columns that are bright for many tokens are the experts that will be overloaded.")
    write_url(router_text=st.session_state["router_text"], router_view=view)


def _specialisation_note() -> None:
    """Collapsed, and built only once opened (a collapsed table still costs the browser its grid)."""
    note = st.expander("How specialised is this router? (held-out sentences)", key="router_specialisation",
                       on_change="rerun")  # fmt: skip
    if not note.open:
        return
    report = get_report()
    with note:
        st.markdown(
            f"The model was trained for a few seconds to name each word's topic. On held-out "
            f"sentences its top-2 choices carry **{report.score:.2f}** of the topic's information "
            f"(mutual information over topic entropy; 0 = experts ignore the topic). With the "
            f"topics shuffled across tokens the same score is **{report.shuffled:.3f}**. "
            f"Share of each topic's routed slots per expert:"
        )
        table = pd.DataFrame(report.topic_expert_share, index=list(DOMAINS),
                             columns=[f"E{e}" for e in range(len(report.topic_expert_share[0]))])  # fmt: skip
        st.dataframe(table.round(2))  # rounded, not a pandas Styler: that costs ~10 ms per render


# --- panel 2: one token, step by step --------------------------------------------------------


@st.fragment(key=STEP)
def step_panel() -> None:
    _init_state()
    with st.container(border=True):
        words, _, x_TD = _sentence()
        if not words:
            st.info("Type a sentence above to step through one of its tokens.")
            _notices("router_token")
            write_url(router_token=int(st.session_state["router_token"]))  # keep the link valid
            return
        s = _settings()
        st.session_state["router_token"] = min(int(st.session_state["router_token"]), len(words) - 1)
        t = st.select_slider("Token to follow", options=list(range(len(words))), key="router_token",
                             format_func=lambda i: f"{i}: {words[i]}",
                             on_change=_changed, args=("router_token", [STEP]))  # fmt: skip
        _notices("router_token")
        renorm = "on" if s["renormalize"] else "off"
        st.caption(f"Settings from the sliders below: k = {s['top_k']}, τ = {s['temperature']:g}, "
                   f"noise σ = {s['noise_std']:g}, renormalise {renorm}.")  # fmt: skip
        model = get_model()
        routing = route_tokens(model, x_TD, **s)
        noise = router_noise(tuple(routing.router_logits.shape), s["noise_seed"]) * s["noise_std"]
        step = explain_token(model, x_TD, t, routing, noise)
        _show_stages(step, s)
        write_url(router_token=t)


def _show_stages(step: TokenStep, s: dict) -> None:
    experts = [f"E{e}" for e in range(step.probs.numel())]
    ids = step.topk_ids.tolist()
    fmt = lambda values: [f"{v:.4f}" for v in values]
    rows = {"1. logit z = W_r x": fmt(step.logits.tolist())}
    if s["noise_std"] > 0:
        rows[f"   z + {s['noise_std']:g}·ε (noise)"] = fmt(step.noisy_logits.tolist())
    rows[f"2. p = softmax(z / {s['temperature']:g})"] = fmt(step.probs.tolist())
    rank = {e: r for r, e in enumerate(ids, start=1)}
    rows[f"3. top-{len(ids)}"] = [f"✓ #{rank[e]}" if e in rank else "" for e in range(len(experts))]
    gate = dict(zip(ids, step.weights.tolist(), strict=True))
    rows["4. gate weight g"] = [f"{gate[e]:.4f}" if e in gate else "0" for e in range(len(experts))]
    st.table(pd.DataFrame(rows, index=experts).T)
    mass = float(step.topk_probs.sum())
    chosen = ", ".join(f"E{e}" for e in ids)
    st.markdown(f"**3. Top-{len(ids)}:** {chosen}, holding {mass:.3f} of the probability. "
                f"**4.** " + ("Renormalised so the chosen weights sum to 1:" if s["renormalize"]
                              else "Kept as they are (no renormalisation), so they sum to "
                                   f"{mass:.3f}."))  # fmt: skip
    if s["renormalize"]:
        denom = " + ".join(f"{p:.3f}" for p in step.topk_probs.tolist())
        st.latex(r",\quad ".join(f"g_{{{e}}} = \\frac{{{p:.3f}}}{{{denom}}} = {g:.3f}"
                                 for e, p, g in zip(ids, step.topk_probs.tolist(), step.weights.tolist(),
                                                    strict=True)))  # fmt: skip
    fig = charts.stage_bars(step.probs.numpy(), ids, step.weights.tolist())
    show_chart(fig, key="router_stage_chart",
               summary=f"Router probabilities over {step.probs.numel()} experts; chosen {chosen} with "
               "weights " + ", ".join(f"{g:.3f}" for g in step.weights.tolist()) + ".")
    terms = " + ".join(f"{g:.3f}\\,E_{{{e}}}(x)" for e, g in zip(ids, step.weights.tolist(), strict=True))
    st.markdown("**5. Weighted sum** of the chosen experts' outputs (first "
                f"{SHOWN_DIMS} of {step.output.numel()} dimensions):")  # fmt: skip
    st.latex(f"y = {terms}")
    out = {f"E{e}(x)": step.expert_outputs[k, :SHOWN_DIMS].tolist() for k, e in enumerate(ids)}
    out["y"] = step.output[:SHOWN_DIMS].tolist()
    st.table(pd.DataFrame(out, index=[f"d{i}" for i in range(SHOWN_DIMS)]).T.round(4))
    gap = float((step.output - step.engine_output).abs().max())
    st.caption(f"Check: moe_core's expert path gives the same y (largest difference {gap:.1e}). "
               "Only the gap between the chosen experts' logits sets their renormalised weights.")


# --- panel 3: the sliders --------------------------------------------------------------------


@st.fragment(key=SLIDERS)
def sliders_panel() -> None:
    _init_state()
    with st.container(border=True):
        deps = [SLIDERS, STEP]
        c1, c2 = st.columns(2)
        k = c1.slider("k (experts per token)", 1, 8, key="router_k",
                      on_change=_changed, args=("router_k", deps))  # fmt: skip
        tau = c2.slider("temperature τ", 0.1, 5.0, step=0.1, key="router_temperature",
                        on_change=_changed, args=("router_temperature", deps))  # fmt: skip
        c3, c4, c5 = st.columns([2, 1, 1])
        sigma = c3.slider("router noise σ", 0.0, 3.0, step=0.1, key="router_noise",
                          on_change=_changed, args=("router_noise", deps))  # fmt: skip
        seed = c4.number_input("noise seed", 0, 9999, step=1, key="router_seed",
                               on_change=_changed, args=("router_seed", deps))  # fmt: skip
        renorm = c5.toggle("renormalise", key="router_renorm",
                           on_change=_changed, args=("router_renorm", deps))  # fmt: skip
        _notices("router_k", "router_temperature", "router_noise", "router_seed", "router_renorm")
        words, _, x_TD = _sentence()
        if words:
            routing = route_tokens(get_model(), x_TD, **_settings())
            fig = charts.router_heatmap(routing.router_probs.numpy(), words, routing.topk_ids.numpy(),
                                        weights=routing.topk_weights.numpy(),
                                        title=f"After τ and noise; gate weights of the top-{k}")  # fmt: skip
            top = routing.topk_weights[:, 0]
            show_chart(fig, key="router_sliders_chart",
                       summary=f"{len(words)} words × {routing.router_probs.shape[1]} experts at k = {k}; "
                       f"the first choice's gate weight ranges "
                       f"{float(top.min()):.2f}–{float(top.max()):.2f}.")
            counts = torch.bincount(routing.topk_ids.reshape(-1), minlength=routing.router_probs.shape[1])
            show_chart(charts.load_bars(counts.tolist(), title="Load: routed slots per expert"),
                       key="router_load_chart",
                       summary="Routed slots per expert: "
                       + ", ".join(f"E{e} {c}" for e, c in enumerate(counts.tolist())) + ".")
            st.caption("Temperature reshapes the weights but never the choice; noise changes the choice "
                       "for borderline tokens.")  # fmt: skip
        write_url(router_k=k, router_temperature=round(tau, 2), router_noise=round(sigma, 2),
                  router_seed=int(seed), router_renorm=renorm)  # fmt: skip


# --- panel 4: token choice vs expert choice --------------------------------------------------


@st.cache_data(max_entries=1, show_spinner=False)
def _batch_logits() -> np.ndarray:
    """Router logits of every example sentence (each encoded in its own context): [T, E]."""
    model = get_model()
    with torch.no_grad():
        logits = [model.moe.router.gate(model.sentence_hidden(s)[2]) for s in EXAMPLES.values()]
    return torch.cat(logits).numpy()


@st.fragment(key=COMPARE)
def comparison_panel() -> None:
    _init_state()
    with st.container(border=True):
        cf = st.slider("expert-choice capacity factor CF", 0.5, 4.0, step=0.25, key="router_ec_cf",
                       on_change=_changed, args=("router_ec_cf", [COMPARE]))  # fmt: skip
        _notices("router_ec_cf")
        logits = torch.from_numpy(_batch_logits())
        num_tokens, num_experts = logits.shape
        top1, top2 = softmax_topk(logits, 1), softmax_topk(logits, 2)
        ec = expert_choice(logits, capacity_factor=cf)
        count = lambda ids: torch.bincount(ids.flatten(), minlength=num_experts).tolist()
        loads = {"top-1 token choice": count(top1.topk_ids), "top-2 token choice": count(top2.topk_ids),
                 f"expert choice (c={ec.token_ids.shape[1]})": ec.tokens_per_expert.tolist()}  # fmt: skip
        spread = "; ".join(f"{name}: {min(load)}–{max(load)}" for name, load in loads.items())
        show_chart(charts.comparison_loads(loads, title=f"The same {num_tokens} tokens, three routers"),
                   key="router_compare_chart", summary=f"Tokens per expert, least to most loaded — {spread}.")
        per_token = np.bincount(ec.experts_per_token.numpy(), minlength=3)
        hist = {"top-2 token choice": [0, 0, num_tokens], "expert choice": per_token.tolist()}
        counts = ", ".join(f"{n:,} with {e}" for e, n in enumerate(per_token.tolist()) if n)
        show_chart(charts.experts_per_token_bars(hist, title="Experts per token"), key="router_ept_chart",
                   summary=f"Top-2 token choice gives all {num_tokens} tokens 2 experts; expert choice gives "
                   f"{counts} experts.")
        skipped = int(per_token[0])
        st.caption(f"Expert choice gives each expert exactly c tokens; here {skipped} of {num_tokens} tokens "
                   "got no expert at all and pass through the residual connection. Token choice makes the "
                   "loads uneven; expert choice makes the experts-per-token uneven instead.")  # fmt: skip
        write_url(router_ec_cf=cf)


__all__ = ["render_body", "render_hero"]
