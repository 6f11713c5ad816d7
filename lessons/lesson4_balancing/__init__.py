"""Lesson 4 body: train the tiny MoE live and watch its experts collapse — or stay balanced.

The live model comes first (`render_hero`, lessons/lesson4_balancing/hero.py): settings, Train and
the run's charts on the first screen, a replay slider, and one verdict rule for the whole run
(moe_core.collapse_verdict). The reading follows, with these panels after their sections (order of
`lessons/content/README.md`):

    training_controls    (after demo_setup)      a pointer back to the controls at the top
    training_charts      (after reading_charts)  after training: held-out metrics, the domain × expert
                                                 heatmap, the cause, and "same seed, balancing on"
    recovery_experiment  (after recovery)        collapse first, then switch balancing on
    method_comparison    (after comparison)      several seeds per method (recorded for the defaults)

Runs train on worker threads (lessons/lesson4_balancing/runs.py); each panel that shows a run is a keyed
fragment that reruns itself a few times a second while its run trains, and once more as a full page
run when it ends. Settings live in the URL (`balance_*`, lessons/lesson4_balancing/state.py).
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import streamlit as st

from lessons.course.charts import show_chart
from lessons.course.render import render_sections
from lessons.lesson4_balancing import figures as charts
from lessons.lesson4_balancing import figures_runs as runs_charts
from lessons.lesson4_balancing.hero import continue_main, hero_panel
from lessons.lesson4_balancing.real_lm import render_real_lm
from lessons.lesson4_balancing.runs import RunSpec, job_in, launch, poll, show_busy, status
from lessons.lesson4_balancing.state import COMPARE, MAIN, MODES, RECOVERY, SWEEP, config, init_state
from lessons.lesson4_balancing.sweep import load_recording, recorded_rows, row_of
from lessons.lesson4_balancing.views import (
    compare_table,
    explain_run,
    final_figures,
    metrics_row,
    recovery_summary,
    run_charts,
    summarise_load,
    sweep_summary,
)


def render_hero() -> None:
    init_state()
    poll(MAIN, hero_panel)


def render_body() -> None:
    init_state()
    render_sections(
        4,
        {
            "demo_setup": controls_pointer,
            "reading_charts": details_panel,
            "recovery": recovery_panel,
            "comparison": sweep_panel,
            "real_lm": render_real_lm,
        },
    )


def controls_pointer() -> None:
    st.caption(
        "The controls are at the top of the page: **Balancing** and **Train**, with every other setting "
        "under *Model and training settings*. The same seed always reproduces the same run."
    )


# --- after the main run: held-out numbers, where each domain went, why, and a comparison ---------


def details_panel() -> None:
    job = job_in(MAIN)
    view = job.view() if job is not None else None
    if view is None or view.running or view.error or view.results[0] is None:
        st.caption("After a run, its held-out numbers and the domain × expert heatmap appear here.")
    else:
        result = view.results[0]
        with st.container(border=True, key="balance_details_box"):
            s = result.stats
            c1, c2, c3 = st.columns(3)
            c1.metric("Max expert share", f"{s.max_load:.2f}", help="held-out batch of 2048 tokens")
            c2.metric(
                "Dead experts", f"{s.dead_experts} of {len(s.load)}", help="under a tenth of a fair share"
            )
            c3.metric("Task loss (MSE)", f"{result.final_loss:.3f}", help="held-out batch")
            metrics_row(result)
            winners = [max(range(len(row)), key=row.__getitem__) for row in result.domain_expert]
            show_chart(
                charts.domain_heatmap(result.domain_expert, title="Which expert serves which domain"),
                key="balance_main_heatmap",
                summary="Held-out tokens of each domain by first-choice expert: "
                + ", ".join(f"domain {m} mostly E{e}" for m, e in enumerate(winners))
                + f". {len(set(winners))} different experts serve the {len(winners)} domains.",
            )
            st.markdown(explain_run(result))
            _compare_button(job.specs[0], result)
    poll(COMPARE, draw_compare)
    st.caption(
        "Without balancing half or more of the experts starve, usually within the first hundred steps; "
        "with it every expert keeps its share. Compare the final task losses too: the experts are tiny, "
        "so a balanced run, which uses all of them, usually ends lower."
    )


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
        show_chart(
            runs_charts.compare_runs(runs, title=f"Same seed ({base_spec.config.seed}), side by side"),
            key="balance_compare_chart",
            summary="Held-out load after training — "
            + "; ".join(f"{MODES[n]}: {summarise_load(r.stats.load)}" for n, r in names.items()),
        )
        show_chart(
            charts.loss_curve(
                {MODES[n]: r.history.loss for n, r in names.items()}, title="Task loss of both runs"
            ),
            key="balance_compare_loss",
            summary="Task loss per step of both runs, ending at "
            + " and ".join(f"{r.history.loss[-1]:.3f} ({MODES[n]})" for n, r in names.items())
            + ".",
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
            n = view.progress.step
            history = view.progress.history
            if n:
                run_charts(history.load[:n], history.loss[:n], prefix="balance_recovery",
                           total=view.progress.total, switch_step=last.start_step)  # fmt: skip
            return
        results = view.results
        if results[-1] is None:
            return
        final_figures(results[-1], prefix="balance_recovery", switch_step=last.start_step)
        recovery_summary(results[-2] if len(results) > 1 else job.parent_result, results[-1], last.start_step)


# --- panel 4: several seeds per method ---------------------------------------------------------------


@cache
def _recording() -> dict | None:
    return load_recording()


def sweep_panel() -> None:
    with st.container(border=True, key="balance_sweep_controls_box"):
        seeds = st.slider("Seeds per method", 2, 10, key="balance_seeds")
        first = int(st.session_state["balance_seed"])
        try:
            configs = [config(balance=m, seed=first + s) for m in MODES for s in range(seeds)]
        except ValueError as e:
            st.error(f"These settings cannot be trained: {e}", icon=":material/error:")
            return
        recorded = recorded_rows(configs, _recording()) if job_in(SWEEP) is None else None
        label = (
            "Recompute them on this server"
            if recorded
            else f"Compare the three methods on seeds {first}–{first + seeds - 1}"
        )
        if st.button(label, key="balance_sweep_btn", icon=":material/leaderboard:"):
            launch(SWEEP, [RunSpec(c) for c in configs])
            recorded = None
    if recorded:
        rec = _recording()
        seconds = sum(r.seconds for r in recorded)
        st.caption(
            f"Recorded with these settings on {rec['where']} (torch {rec['torch']}; training took "
            f"{seconds:.0f} s there), so it shows at once. Numbers differ by a seed or two between "
            "machines: recompute them to see this server's."
        )
        with st.container(border=True, key="balance_sweep_box"):
            sweep_summary(recorded, MODES, configs[0].num_experts)
        return
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
        rows = [row_of(r) for r in view.results]
        sweep_summary(rows, MODES, job.specs[0].config.num_experts)
