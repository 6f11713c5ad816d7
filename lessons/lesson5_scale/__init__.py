"""Lesson 5 body: MoE at scale, with four things to do (section order of lessons/content/README.md).

    fine_grained_config  split experts m-fold and share K_s of them: parameters, C(N, k), and a
                         few seconds of live training that measures specialisation
    traffic_matrix       a REAL expert-parallel run on N local processes (`moe_core.parallel`):
                         the all-to-all traffic matrix beside its expected value, and the straggler
    memory_vs_compute    per-GPU memory of a real model at EP degree G in bf16 / FP8 / FP4
    real_models_table    real models counted live by `count_params`, and a pasted config.json

Each panel is an `st.fragment`, so its widgets rerun only that panel. Widget values live in the
URL as `scale_*` (read once per session through `lessons.course.url_state`, which clamps bad values);
the pasted config.json does not, being far too long for a link.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lessons.course.charts import show_chart
from lessons.course.figures import human_count, human_flops
from lessons.course.render import md_escape, render_sections
from lessons.course.url_state import seed_numbers, url_choice, write_url
from lessons.lesson5_scale import figures as charts
from lessons.lesson5_scale.calc import (
    FORMATS,
    GB,
    SPLITS,
    ConfigError,
    experts_touched,
    fine_grained,
    max_shared,
    memory_per_gpu,
    parse_config,
    run_ep_demo_process,
    train_specialisation,
)
from lessons.lesson5_scale.hero import render_hero
from moe_core.model_cards import MODEL_CARDS, MORE_MODEL_CARDS, comparison_rows

RANKS, EXPERTS, GPU_COUNTS = (1, 2, 4, 8), (8, 16, 32, 64), (1, 2, 4, 8, 16, 32, 64)
CONTEXTS = (1024, 4096, 16384, 32768, 131072)
EP_TOKENS = 256
GPU_GB = 80.0  # one H100 / A100 80 GB
MODELS = tuple(MODEL_CARDS)
NUMBERS = {  # key -> (default, lo, hi, integer); keys in CHOICES snap to the nearest allowed value
    "scale_split": (4, 1, 8, True), "scale_shared": (1, 0, 15, True),
    "scale_ranks": (4, 1, 8, True), "scale_experts": (8, 8, 64, True), "scale_topk": (2, 1, 8, True),
    "scale_skew": (0.0, 0.0, 2.0, False), "scale_seed": (0, 0, 999, True),
    "scale_gpus": (8, 1, 64, True), "scale_seqs": (16, 1, 256, True),
    "scale_context": (4096, 1024, 131072, True),
}
CHOICES = {"scale_split": SPLITS, "scale_ranks": RANKS, "scale_experts": EXPERTS,
           "scale_gpus": GPU_COUNTS, "scale_context": CONTEXTS}
TEXT_CHOICES = {"scale_model": ("deepseek-ai/DeepSeek-V3", MODELS), "scale_format": ("FP8", tuple(FORMATS))}


def render_body() -> None:
    _init_state()
    render_sections(5, {"shared_fine_grained": fine_grained_panel, "stragglers": traffic_panel,
                        "memory_vs_compute": memory_panel, "real_models": models_panel})


# --- state: URL in, notices out ----------------------------------------------------------------


def _init_state() -> None:
    """Seed each widget's session value from the URL once; the widgets own it afterwards."""
    notices: dict[str, str] = st.session_state.setdefault("scale_notices", {})
    seed_numbers(notices, NUMBERS, CHOICES)
    for key, (default, options) in TEXT_CHOICES.items():
        if key not in st.session_state:
            parsed = url_choice(key, default, options)
            st.session_state[key] = parsed.value
            if parsed.notice:
                notices[key] = parsed.notice


def _notices(*keys: str) -> None:
    notes = [st.session_state["scale_notices"].pop(k) for k in keys if k in st.session_state["scale_notices"]]
    if notes:
        st.caption("Link settings adjusted: " + "; ".join(notes))


def _clamp(key: str, options: tuple) -> None:
    """Keep a widget's value inside options that depend on another widget (before drawing it)."""
    if st.session_state[key] not in options:
        st.session_state[key] = max((o for o in options if o <= st.session_state[key]), default=options[0])


# --- panel 1: shared and fine-grained experts ------------------------------------------------


@st.cache_data(max_entries=40, show_spinner=False)
def specialisation(split: int, shared: int):
    return train_specialisation(split, shared)


def warm() -> None:
    """The default view's heavy work, for lessons.course.warm_up: three 120-step training runs and
    one 4-process expert-parallel job (same arguments, so the page finds them cached)."""
    split, shared = NUMBERS["scale_split"][0], NUMBERS["scale_shared"][0]
    for m, k in dict.fromkeys([(1, 0), (split, 0), (split, shared)]):
        specialisation(m, k)
    ep_run(*(NUMBERS[key][0] for key in ("scale_ranks", "scale_experts", "scale_topk", "scale_skew",
                                          "scale_seed")))  # fmt: skip


@st.fragment
def fine_grained_panel() -> None:
    with st.container(border=True):
        st.markdown("**Try it: split 16 experts (top-2) finer, then share some of the pieces.** "
                    "The expert parameter budget stays fixed.")
        left, right = st.columns(2)
        split = left.select_slider("Split factor m", SPLITS, key="scale_split",
                                   help="Each expert becomes m experts of width F/m; top-k becomes m·k.")
        _clamp("scale_shared", tuple(range(max_shared(split) + 1)))
        shared = right.slider("Shared experts K_s", 0, max_shared(split), key="scale_shared",
                              help="Pieces every token uses; the router then picks m·k − K_s.")
        _notices("scale_split", "scale_shared")
        layout = fine_grained(split, shared)
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Routed experts, top-k", f"{layout.routed}, top-{layout.top_k}")
        c2.metric("Expert parameters", f"{layout.expert_params:,}", help="All experts of the live layer.")
        c3.metric("Active per token", f"{layout.active_params:,}")
        c4.metric("Combinations C(N, k)", charts.big_count(layout.combinations))
        combos = [fine_grained(m, shared).combinations if shared <= max_shared(m) else None for m in SPLITS]
        per_split = ", ".join(f"m = {m}: {charts.big_count(c) if c else 'n/a'}"
                              for m, c in zip(SPLITS, combos, strict=True))
        title = f"Expert combinations with K_s = {shared}"
        fig = charts.combinations_bars(SPLITS, combos, split, title=title)
        show_chart(fig, key="scale_combinations_chart", summary=f"Combinations per split: {per_split}.")
        st.caption("Splitting experts leaves parameters and FLOPs unchanged but multiplies the "
                   f"combinations; only the router grows ({layout.router_params:,} weights here).")
        _specialisation_table(split, shared)
        write_url(scale_split=split, scale_shared=shared)


def _layout_label(split: int, shared: int) -> str:
    layout = fine_grained(split, shared)
    label = f"{layout.routed} routed, top-{layout.top_k}" + (f", {shared} shared" if shared else "")
    return label + (" (the start)" if split == 1 and not shared else "")


def _specialisation_table(split: int, shared: int) -> None:
    """The starting layer, the split alone and the learner's layer, each trained for 120 steps."""
    layouts = list(dict.fromkeys([(1, 0), (split, 0), (split, shared)]))  # unique, in order
    with st.spinner("Training the layers for 120 steps on 8 domains…", show_time=True):
        runs = [specialisation(m, k) for m, k in layouts]
    table = pd.DataFrame([{"layer": _layout_label(r.split, r.shared), "held-out loss": r.loss,
                           "specialisation": r.score, "busiest expert / mean": r.max_load} for r in runs])
    st.dataframe(table.style.format({"held-out loss": "{:.3f}", "specialisation": "{:.2f}",
                                     "busiest expert / mean": "{:.2f}"}), hide_index=True,
                 key="scale_specialisation_table")
    shares = runs[-1].shares
    show_chart(charts.specialisation_heatmap(shares, title="Where each domain's tokens go (your layer)"),
               key="scale_specialisation_chart",
               summary=f"{len(shares)} domains by {len(shares[0])} routed experts; each domain's busiest "
               f"expert takes {min(map(max, shares)):.0%}–{max(map(max, shares)):.0%} of its slots.")
    st.caption("Specialisation is the mutual information between a token's domain and its routed experts, "
               "over the domain's entropy (0 = routing ignores the domain); the data is Lesson 4's, where "
               "every domain's target shares one common map. In a run this short, splitting alone makes "
               "each expert smaller and its routing less tied to the domain; with the same split, shared "
               "experts (free to learn the common map) usually give the routed experts back some "
               "specialisation, while the loss moves little. A toy run shows the measurement, not "
               "DeepSeekMoE's result at scale. "
               f"Your layer trained in {runs[-1].seconds:.1f} s.")


# --- panel 2: a real expert-parallel run -------------------------------------------------------


@st.cache_data(max_entries=48, show_spinner=False)
def ep_run(ranks: int, experts: int, top_k: int, skew: float, seed: int) -> dict:
    """One real run on `ranks` processes (Gloo on loopback), cached per settings."""
    return run_ep_demo_process(ranks, EP_TOKENS, experts, top_k, skew, seed)


@st.fragment
def traffic_panel() -> None:
    with st.container(border=True):
        st.markdown(f"**Try it: a real expert-parallel layer on N processes** ({EP_TOKENS} tokens, each "
                    "GPU a process exchanging rows with `all_to_all_single`).")
        c1, c2, c3, c4 = st.columns(4)
        ranks = c1.select_slider("GPUs (ranks)", RANKS, key="scale_ranks")
        experts = c2.selectbox("Experts E", EXPERTS, key="scale_experts")
        top_k = c3.slider("Top-k", 1, 8, key="scale_topk")
        skew = c4.slider("Router skew", 0.0, 2.0, step=0.25, key="scale_skew",
                         help="Expert e is picked in proportion to (e+1)^−skew: 0 = uniform.")
        seed = st.number_input("Batch seed", 0, 999, step=1, key="scale_seed", width=160,
                               help="Another seed draws another batch of tokens and routing noise.")
        _notices("scale_ranks", "scale_experts", "scale_topk", "scale_skew", "scale_seed")
        try:
            with st.spinner(f"Starting {ranks} processes and exchanging tokens…", show_time=True):
                out = ep_run(ranks, experts, top_k, skew, int(seed))
        except Exception as exc:  # a failed run is shown, never a traceback
            st.error(f"The parallel run failed: {md_escape(str(exc).splitlines()[-1] if str(exc) else '')}")
            return
        _show_traffic(out)
        write_url(scale_ranks=ranks, scale_experts=experts, scale_topk=top_k, scale_skew=skew,
                  scale_seed=int(seed))


def _show_traffic(out: dict) -> None:
    n, received = out["world_size"], out["slots_received"]
    expected_in = [sum(col) for col in zip(*out["expected_traffic"], strict=True)]
    mean, busiest = sum(received) / n, max(received)
    cells = [c for row in out["traffic"] for c in row]
    show_chart(charts.traffic_heatmaps(out["traffic"], out["expected_traffic"],
                                       title=f"Routed slots from GPU to GPU ({n} ranks)"),
               key="scale_traffic_chart",
               summary=f"{n}×{n} slots sent from each GPU to each GPU: {min(cells):,}–{max(cells):,} per "
               "pair measured, above the router's expected counts.")
    show_chart(charts.rank_load_bars(received, expected_in, title="Each GPU's expert work"),
               key="scale_rank_load_chart",
               summary=f"Slots each GPU's experts process: busiest GPU {received.index(busiest)} with "
               f"{busiest:,}, mean {mean:,.1f}.")
    sent = sum(out["bytes_sent"]["dispatch"])
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("GPU efficiency", f"{mean / busiest:.0%}", help="1/(1 + MaxVio): mean load over the busiest.")
    c2.metric("MaxVio (GPU)", f"{busiest / mean - 1:.2f}")
    c3.metric("Bytes on the wire", human_count(sent, "B"), help="Dispatch trip; the return trip is equal.")
    c4.metric("Run time", f"{out['seconds']:.2f} s", help="Process start, exchange and check.")
    st.caption(f"Traffic of {n} ranks: {sum(map(sum, out['traffic']))} routed slots (T·k = "
               f"{out['tokens']}·{out['topk']}), {out['backend']} backend. The diagonal stays on its GPU. "
               f"Largest difference from single-process fused_moe: {out['max_abs_diff']:.1e}. "
               "The busiest column sets the pace for every GPU.")


# --- panel 3: memory versus compute ------------------------------------------------------------


def _gpu_options(model: str) -> tuple[int, ...]:
    experts = comparison_rows_by_model()[model]["experts"]
    return tuple(g for g in GPU_COUNTS if experts % g == 0)


@st.cache_data(max_entries=1, show_spinner=False)
def comparison_rows_by_model() -> dict[str, dict]:
    return {row["model"]: row for row in comparison_rows()}


@st.fragment
def memory_panel() -> None:
    with st.container(border=True):
        c1, c2 = st.columns([3, 2])
        model = c1.selectbox("Model", MODELS, key="scale_model")
        fmt = c2.segmented_control("Weight format", tuple(FORMATS), key="scale_format", required=True)
        c3, c4, c5 = st.columns(3)
        options = _gpu_options(model)
        _clamp("scale_gpus", options)
        gpus = c3.select_slider("GPUs G (expert parallel)", options, key="scale_gpus")
        seqs = c4.slider("Sequences per GPU", 1, 256, key="scale_seqs")
        context = c5.select_slider("Context length", CONTEXTS, key="scale_context",
                                   format_func=lambda c: f"{c // 1024}K")
        _notices("scale_model", "scale_format", "scale_gpus", "scale_seqs", "scale_context")
        config = MODEL_CARDS[model].config
        per_gpu = {g: {k: v / GB for k, v in memory_per_gpu(config, g, fmt, seqs, context).__dict__.items()}
                   for g in options}
        fits = [g for g in options if sum(per_gpu[g].values()) <= GPU_GB]
        show_chart(charts.memory_bars(per_gpu, gpus, GPU_GB, title=f"{model} in {fmt}: memory per GPU"),
                   key="scale_memory_chart",
                   summary=f"At G = {gpus} each GPU holds {sum(per_gpu[gpus].values()):,.1f} GB of its "
                   f"{GPU_GB:.0f} GB; " + (f"the smallest G that fits is {fits[0]}." if fits
                                           else "no GPU count shown fits."))
        _memory_readout(model, config, per_gpu[gpus], gpus, fmt, seqs)
        write_url(scale_model=model, scale_format=fmt, scale_gpus=gpus, scale_seqs=seqs,
                  scale_context=context)


def _memory_readout(model: str, config: dict, parts: dict, gpus: int, fmt: str, seqs: int) -> None:
    row = comparison_rows_by_model()[model]
    total_gb = sum(parts.values())
    c1, c2, c3 = st.columns(3)
    c1.metric("Per GPU", f"{total_gb:.1f} GB", "fits" if total_gb <= GPU_GB else f"over {GPU_GB:g} GB",
              delta_color="normal" if total_gb <= GPU_GB else "inverse")
    c2.metric("FLOPs per token", human_flops(row["flops_per_token"]),
              help="2 × active non-embedding weights.")
    active_gb = row["active_b"] * 1e9 * FORMATS[fmt] / GB
    c3.metric("Active weights only", f"{active_gb:.0f} GB",
              help="What one token reads: not what must be stored.")
    touched = experts_touched(row["experts"], row["top_k"], seqs * gpus)
    st.caption(f"One decode step of {seqs * gpus} tokens (one per sequence) touches on average "
               f"{touched:.0f} of {row['experts']} experts per layer, so every expert must stay in "
               "memory. MoE saves FLOPs, not bytes: memory follows total parameters.")
    points = [{"name": r["model"], "weights_gb": r["total_b"] * 2, "gflops": r["flops_per_token"] / 1e9}
              for r in comparison_rows_by_model().values()]
    mine = next(p for p in points if p["name"] == model)
    show_chart(charts.flops_vs_memory(points, highlight=model, title="Compute per token vs memory"),
               key="scale_flops_chart",
               summary=f"{len(points)} models, bf16 weight memory against forward GFLOPs per token; {model}: "
               f"{mine['weights_gb']:,.0f} GB and {mine['gflops']:,.1f} GFLOPs.")
    st.caption("Every real model sits far below the dense line: its memory follows total parameters, its "
               "compute active ones. Hover a dot for its name; the model picked above is highlighted.")


# --- panel 4: real models, and your own config.json ---------------------------------------------


HUB = "https://huggingface.co/"
NUMBER_COLUMNS = {"total (B)": "%.1f", "active (B)": "%.1f", "active %": "%.0f%%", "bf16 (GB)": "%.0f"}


def _row(name: str, experts: int, shared: int, top_k: int, total: float, active: float) -> dict:
    return {"model": name, "experts": f"{experts} + {shared} shared" if shared else str(experts),
            "top-k": top_k, "total (B)": total / 1e9, "active (B)": active / 1e9,
            "active %": 100 * active / total, "bf16 (GB)": 2 * total / GB}


def _columns(link: bool) -> dict:
    config = {name: st.column_config.NumberColumn(format=fmt) for name, fmt in NUMBER_COLUMNS.items()}
    if link:  # the model's Hub page is its model card; show the name without the organisation
        config["model"] = st.column_config.LinkColumn("model", display_text=r"https://huggingface\.co/[^/]+/(.*)")
    return config


@st.fragment
def models_panel() -> None:
    with st.container(border=True):
        # count_params on every card's config, now: the calculator's presets and the other families
        rows = comparison_rows([*MODEL_CARDS.values(), *MORE_MODEL_CARDS.values()])
        table = pd.DataFrame([{**_row(HUB + r["model"], r["experts"], r["shared"], r["top_k"],
                                      r["total_b"] * 1e9, r["active_b"] * 1e9),
                               "published (B)": _published(r)} for r in rows])  # fmt: skip
        st.dataframe(table, hide_index=True, key="scale_models_table", column_config=_columns(link=True))
        st.caption("Active fractions fell from about 28% to under 10% as experts grew smaller and more "
                   "numerous. Published figures are total / active from each model card; a model's name "
                   "opens its card on the Hugging Face Hub.")
        _paste_config()


def _published(row: dict) -> str:
    active = row["published_active_b"]
    return f"{row['published_total_b']:g} / " + ("not published" if active is None else f"{active:g}")


def _load_example() -> None:
    import json

    st.session_state["scale_config"] = json.dumps(MODEL_CARDS["allenai/OLMoE-1B-7B-0924"].config, indent=2)


def _paste_config() -> None:
    st.markdown("**Your own model:** paste a `config.json` from the Hugging Face Hub.")
    st.button("Paste an example (OLMoE)", key="scale_config_example", on_click=_load_example)
    text = st.text_area("config.json", key="scale_config", height=160,
                        placeholder='{"model_type": "mixtral", "hidden_size": 4096, ...}')
    if not text or not text.strip():
        return
    try:
        config, pc = parse_config(text)
    except ConfigError as e:
        st.error(md_escape(str(e)), icon=":material/error:")
        return
    name = str(config.get("_name_or_path") or pc.model_type)
    st.dataframe(pd.DataFrame([_row(name, pc.num_experts, pc.num_shared_experts, pc.top_k, pc.total,
                                    pc.active)]), hide_index=True, key="scale_config_table",
                 column_config=_columns(link=False))
    st.caption(f"Read as {md_escape(pc.model_type)}: {charts.parameter_caption(pc.total, pc.active)}, "
               f"{human_flops(pc.flops_per_token)} per token, {pc.num_moe_layers} of {pc.num_layers} "
               "layers are MoE layers.")


__all__ = ["render_body", "render_hero", "warm"]
