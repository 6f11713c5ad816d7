"""Lesson 4 body: train the tiny MoE live and watch its experts collapse — or stay balanced.

Panels, in the section order of `lessons/content/README.md`:

    training_controls    (after demo_setup)      the settings form and its Train button
    training_charts      (after reading_charts)  progress, Stop, load bars, load over time, loss, dead
                                                 experts; after training the domain × expert heatmap,
                                                 metrics, the cause, and "same seed, balancing on"
    recovery_experiment  (after recovery)        collapse first, then switch balancing on
    method_comparison    (after comparison)      several seeds per method

Runs train on worker threads (lessons/lesson4_balancing/runs.py); each panel that shows a run is a keyed
fragment that reruns itself a few times a second while its run trains, so the charts move during
training, and once more as a full page run when it ends. Settings live in the URL (`balance_*`).
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from lessons.course.render import render_sections
from lessons.course.url_state import UrlValue, url_choice, url_flag, url_number, write_url
from lessons.lesson4_balancing import figures as charts
from lessons.lesson4_balancing.runs import (
    Job,
    RunSpec,
    cached_result,
    job_in,
    launch,
    poll,
    show_busy,
    status,
)
from lessons.lesson4_balancing.views import (
    compare_table,
    explain_run,
    final_figures,
    live_figures,
    metrics_row,
    recovery_summary,
    sweep_summary,
)
from moe_core.train import TrainConfig

MODES = {
    "none": "none",
    "aux-loss": "auxiliary loss (Switch)",
    "aux-free": "aux-loss-free bias (DeepSeek-V3)",
}
LEARNING_RATES = (0.003, 0.01, 0.02, 0.03, 0.05, 0.1)
NUMBERS = {  # key -> (default, lo, hi, integer)
    "balance_alpha": (TrainConfig.aux_coef, 0.0, 0.3, False),
    "balance_experts": (8, 4, 16, True),
    "balance_topk": (1, 1, 2, True),
    "balance_steps": (300, 50, 2000, True),
    "balance_lr": (0.03, 0.003, 0.1, False),
    "balance_seed": (0, 0, 9999, True),
    "balance_noise": (0.0, 0.0, 2.0, False),
    "balance_cf": (0.0, 0.0, 4.0, False),
    "balance_switch_step": (150, 10, 1000, True),
    "balance_after_steps": (300, 50, 1000, True),
    "balance_seeds": (5, 2, 10, True),
}
CHOICES = {
    "balance_mode": ("none", tuple(MODES)),
    "balance_switch_to": ("aux-free", ("aux-loss", "aux-free")),
}
FLAGS = {"balance_zloss": False}
MAIN, COMPARE, RECOVERY, SWEEP = "main", "compare", "recovery", "sweep"


def render_body() -> None:
    _init_state()
    render_sections(
        4,
        {
            "demo_setup": controls_panel,
            "reading_charts": charts_panel,
            "recovery": recovery_panel,
            "comparison": sweep_panel,
        },
    )


# --- state -----------------------------------------------------------------------------------


def _init_state() -> None:
    """Seed each widget's value from the URL once per session (the widgets own it afterwards)."""
    notices: dict[str, str] = st.session_state.setdefault("balance_notices", {})
    parsed: dict[str, UrlValue] = {k: url_number(k, *spec) for k, spec in NUMBERS.items()}
    parsed |= {k: url_choice(k, *spec) for k, spec in CHOICES.items()}
    parsed |= {k: url_flag(k, default) for k, default in FLAGS.items()}
    lr = parsed["balance_lr"]  # snap to the slider's stops
    parsed["balance_lr"] = UrlValue(min(LEARNING_RATES, key=lambda v: abs(v - lr.value)), lr.notice)
    for key, value in parsed.items():
        if key not in st.session_state:
            st.session_state[key] = value.value
            if value.notice:
                notices[key] = value.notice


def config(**changes) -> TrainConfig:
    """The TrainConfig the form's values describe (with `changes` applied)."""
    s = st.session_state
    values = dict(
        balance=s["balance_mode"],
        aux_coef=float(s["balance_alpha"]),
        z_loss=bool(s["balance_zloss"]),
        noise=float(s["balance_noise"]) > 0,
        noise_std=float(s["balance_noise"]) or 1.0,
        capacity_factor=float(s["balance_cf"]) or None,
        num_experts=int(s["balance_experts"]),
        top_k=int(s["balance_topk"]),
        steps=int(s["balance_steps"]),
        lr=float(s["balance_lr"]),
        seed=int(s["balance_seed"]),
    )
    return TrainConfig(**(values | changes))


# --- panel 1: the controls -------------------------------------------------------------------


def controls_panel() -> None:
    with st.form("balance_form", border=True):
        st.radio("Balancing", tuple(MODES), format_func=MODES.get, key="balance_mode", horizontal=True)
        c1, c2, c3 = st.columns(3)
        c1.slider(
            "Aux-loss coefficient α",
            0.0,
            0.3,
            step=0.01,
            key="balance_alpha",
            help="Used by the auxiliary-loss mode. Switch used 0.01; try it here.",
        )
        c2.slider("Experts E", 4, 16, key="balance_experts")
        c3.slider("Top-k", 1, 2, key="balance_topk")
        c1.slider("Steps", 50, 2000, step=50, key="balance_steps")
        c2.select_slider("Learning rate (Adam)", LEARNING_RATES, key="balance_lr")
        c3.number_input("Seed", 0, 9999, step=1, key="balance_seed")
        c1.slider(
            "Router noise σ (0 = off)",
            0.0,
            2.0,
            step=0.1,
            key="balance_noise",
            help="Gaussian noise on the router logits while training (noisy top-k gating).",
        )
        c2.slider(
            "Capacity factor (0 = no limit)",
            0.0,
            4.0,
            step=0.25,
            key="balance_cf",
            help="An expert takes at most ceil(CF·T·k/E) slots; the rest are dropped.",
        )
        c3.toggle("Router z-loss", key="balance_zloss", help="ST-MoE's z-loss with coefficient 0.001.")
        submitted = st.form_submit_button("Train", type="primary", icon=":material/play_arrow:")
    notes = st.session_state["balance_notices"]
    if notes:
        st.caption("Link settings adjusted: " + "; ".join(notes.values()))
    if submitted:
        notes.clear()
        try:
            launch(MAIN, [RunSpec(config())])
        except ValueError as e:  # a setting the engine refuses (e.g. top-k > experts)
            st.error(f"These settings cannot be trained: {e}", icon=":material/error:")
    elif job_in(MAIN) is None:
        _show_cached_run()
    s = st.session_state
    write_url(**{k: s[k] for k in (*NUMBERS, *CHOICES, *FLAGS)})
    st.caption("The same seed always reproduces the same run.")


def _show_cached_run() -> None:
    """Revisiting: if anyone trained these settings already, show that run at once."""
    try:
        spec = RunSpec(config())
    except ValueError:
        return
    result = cached_result(spec)
    if result is not None:
        st.session_state[f"balance_job_{MAIN}"] = Job.finished([spec], [result])


# --- panel 2: the live charts and what they show ------------------------------------------------


def charts_panel() -> None:
    poll(MAIN, draw_main)
    poll(COMPARE, draw_compare)
    st.caption(
        "Without balancing half or more of the experts starve, usually within the first hundred steps; "
        "with it every expert keeps its share. Compare the final task losses too: the experts are tiny, "
        "so a balanced run, which uses all of them, usually ends lower."
    )


def draw_main() -> None:
    with st.container(border=True, key="balance_main_box"):
        job = job_in(MAIN)
        if job is None:
            show_busy(MAIN)
            st.info("Press **Train** above to train the model; the charts update while it trains.")
            return
        view = job.view()
        ended = status(MAIN, view)
        if view.error:
            return
        result = view.results[0]
        if not ended or result is None:
            if view.running and job.specs[0].config.balance == "none":
                method = st.session_state["balance_switch_to"]
                st.button(
                    f"Switch on {MODES[method]} now",
                    key="balance_switch_now",
                    on_click=continue_main,
                    icon=":material/healing:",
                    help="Stops this run and continues it with balancing: "
                    "the recovery experiment below shows the rest.",
                )
            if view.progress is not None:
                live_figures(view.progress, prefix="balance_main")
            return
        final_figures(result, prefix="balance_main")
        metrics_row(result)
        st.plotly_chart(
            charts.domain_heatmap(result.domain_expert, title="Which expert serves which domain"),
            key="balance_main_heatmap",
        )
        st.markdown(explain_run(result))
        _compare_button(job.specs[0], result)


def continue_main() -> None:
    """Stop the main run (if it trains) and continue it from where it is with balancing on."""
    job = job_in(MAIN)
    if job is None:
        return
    job.stop(wait_s=5.0)
    result = job.view().results[0]
    if result is None:
        return
    parent = job.specs[0].truncated(result.step)
    steps = int(st.session_state["balance_after_steps"])
    child = RunSpec(
        replace(parent.config, balance=st.session_state["balance_switch_to"], steps=steps), parent=parent
    )
    launch(RECOVERY, [child], parent_result=result)


def _compare_button(spec: RunSpec, result) -> None:
    cfg = spec.config
    other = "aux-free" if cfg.balance == "none" else "none"
    label = "Same seed, balancing on" if other != "none" else "Same seed, no balancing"
    method = (
        st.segmented_control(
            "Balancing for the comparison",
            ("aux-loss", "aux-free"),
            key="balance_cmp_mode",
            format_func=MODES.get,
            default="aux-free",
        )
        if other != "none"
        else "none"
    )
    if st.button(label, key="balance_compare_btn", icon=":material/compare_arrows:"):
        st.session_state["balance_compare_base"] = (spec, result)
        launch(COMPARE, [RunSpec(replace(cfg, balance=method or "aux-free"))])
        st.rerun(scope="app")


def draw_compare() -> None:
    job, base = job_in(COMPARE), st.session_state.get("balance_compare_base")
    if job is None or base is None:
        show_busy(COMPARE)
        return
    with st.container(border=True, key="balance_compare_box"):
        view = job.view()
        status(COMPARE, view, label="Training the comparison")
        other = view.results[0]
        if other is None or view.running or view.error:
            return
        (base_spec, base_result) = base
        names = {base_spec.config.balance: base_result, other.config.balance: other}
        runs = {f"{MODES[n]}": (r.stats.load, r.history.load) for n, r in names.items()}
        st.plotly_chart(
            charts.compare_runs(runs, title=f"Same seed ({base_spec.config.seed}), side by side"),
            key="balance_compare_chart",
        )
        st.plotly_chart(
            charts.loss_curve(
                {MODES[n]: r.history.loss for n, r in names.items()}, title="Task loss of both runs"
            ),
            key="balance_compare_loss",
        )
        st.dataframe(compare_table({MODES[n]: r for n, r in names.items()}))


# --- panel 3: recovery -------------------------------------------------------------------------


def recovery_panel() -> None:
    with st.container(border=True, key="balance_recovery_controls_box"):
        c1, c2, c3 = st.columns(3)
        method = c1.radio(
            "Switch on", ("aux-loss", "aux-free"), format_func=MODES.get, key="balance_switch_to"
        )
        switch = c2.slider("Collapse for (steps)", 10, 1000, step=10, key="balance_switch_step")
        after = c3.slider("Then train (steps)", 50, 1000, step=50, key="balance_after_steps")
        main = job_in(MAIN)
        main_view = main.view() if main is not None else None
        if st.button(
            "Collapse, then switch balancing on", key="balance_recover_btn", icon=":material/healing:"
        ):
            parent = RunSpec(config(balance="none", steps=switch))
            launch(RECOVERY, [parent, RunSpec(config(balance=method, steps=after), parent=parent)])
        if main_view is not None and not main_view.running and main.specs[0].config.balance == "none":
            result = main_view.results[0]
            if result is not None:
                st.button(
                    f"Continue my run from step {result.step} with {MODES[method]}",
                    on_click=continue_main,
                    key="balance_continue_btn",
                    icon=":material/play_arrow:",
                )
    poll(RECOVERY, draw_recovery)
    st.caption(
        "Watch whether the dead experts' shares rise after the marker, and what the loss does meanwhile."
    )


def draw_recovery() -> None:
    job = job_in(RECOVERY)
    if job is None:
        show_busy(RECOVERY)
        return
    with st.container(border=True, key="balance_recovery_box"):
        view = job.view()
        last = job.specs[-1]
        phase = "Collapse phase" if view.index < len(job.specs) - 1 else "Balancing on"
        status(RECOVERY, view, label=phase)
        if view.error:
            return
        if view.running and view.progress is not None:
            live_figures(view.progress, prefix="balance_recovery", switch_step=last.start_step)
            return
        results = view.results
        if results[-1] is None:
            return
        final_figures(results[-1], prefix="balance_recovery", switch_step=last.start_step)
        recovery_summary(results[-2] if len(results) > 1 else job.parent_result, results[-1], last.start_step)


# --- panel 4: several seeds per method ---------------------------------------------------------------


def sweep_panel() -> None:
    with st.container(border=True, key="balance_sweep_controls_box"):
        seeds = st.slider("Seeds per method", 2, 10, key="balance_seeds")
        first = int(st.session_state["balance_seed"])
        if st.button(
            f"Compare the three methods on seeds {first}–{first + seeds - 1}",
            key="balance_sweep_btn",
            icon=":material/leaderboard:",
        ):
            try:
                specs = [RunSpec(config(balance=m, seed=first + s)) for m in MODES for s in range(seeds)]
            except ValueError as e:
                st.error(f"These settings cannot be trained: {e}", icon=":material/error:")
            else:
                launch(SWEEP, specs)
    poll(SWEEP, draw_sweep)
    st.caption("Balancing methods differ in how reliably they balance, and in what they do to the task loss.")


def draw_sweep() -> None:
    job = job_in(SWEEP)
    if job is None:
        show_busy(SWEEP)
        return
    with st.container(border=True, key="balance_sweep_box"):
        view = job.view()
        if view.running:
            n = len(job.specs)
            st.progress(view.index / n, text=f"Run {view.index + 1} of {n}")
        status(SWEEP, view, label="This run")
        if view.running or view.error or any(r is None for r in view.results):
            return
        sweep_summary(job.specs, view.results, MODES)
