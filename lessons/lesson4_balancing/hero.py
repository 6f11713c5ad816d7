"""Lesson 4's live model, above the reading: the settings, Train, and the run's charts beside them.

Issue 17/18: the Train button sat six screens down and the charts a screen below it, so a run was
over before the learner had scrolled to it. Here, on the first screen (1400x900), the left column
holds the prediction and the settings form with Train, the right column the expert load, and the
curves follow full width. One keyed fragment draws it all and reruns itself while the run trains
(lessons/lesson4_balancing/runs.py); when the run has ended a replay slider scrubs it step by step,
and the verdict (moe_core.collapse_verdict, one rule for the whole run) heads the charts, which
mark where the rule fired.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import streamlit as st

from lessons.course.charts import show_chart
from lessons.lesson4_balancing import figures as charts
from lessons.lesson4_balancing.runs import Job, RunSpec, cached_result, job_in, launch, run, show_busy, status
from lessons.lesson4_balancing.state import (
    LEARNING_RATES,
    MAIN,
    MODES,
    RECOVERY,
    config,
    write_settings_to_url,
)
from lessons.lesson4_balancing.views import load_table, run_charts, summarise_load
from moe_core.collapse_verdict import BALANCED_SHARE, RULE, WINDOW, Verdict, judge, windowed_loads

try:  # lessons/course/predict.py is being written by another helper (issue 17); until it lands the
    # page trains without the prediction. CALL SITE: predict(...) in _prediction, reveal(...) below it.
    from lessons.course.predict import predict, reveal
except ModuleNotFoundError as missing:
    if missing.name != "lessons.course.predict":
        raise
    predict = reveal = None

_log = logging.getLogger(__name__)
QUESTION = "If you switch load balancing off, what will the expert load do?"
OUTCOMES = {  # verdict.load -> the option it answers
    "balanced": "It stays even: every expert keeps about its fair share",
    "uneven": "It gets uneven, but every expert keeps some tokens",
    "collapsed": "It collapses: a few experts take most tokens and the others go dead",
}
VERDICT_ICONS = {
    "collapsed": ":material/warning:",
    "loss spike": ":material/trending_up:",
    "uneven": ":material/balance:",
    "balanced": ":material/check_circle:",
}


def hero_panel() -> None:
    with st.container(border=True, key="balance_main_box"):
        left, right = st.columns([2, 3], gap="medium")
        with left:
            _prediction()
            _controls()
        job = job_in(MAIN)
        view = job.view() if job is not None else None
        result = view.results[0] if view is not None else None
        with right:
            if view is None:
                show_busy(MAIN)
                _untrained_bars()
                return
            ended = status(MAIN, view)
            if view.error:
                return
            if not ended:
                _switch_now_button(job)
            history = result.history if result is not None else getattr(view.progress, "history", None)
            if history is None:
                st.caption("Starting…")
                return
            n = view.step if not ended else len(history.load)
            loads, losses = history.load[:n], history.loss[:n]
            if not loads:
                return
            verdict = judge(loads, losses)
            if ended:
                _verdict_line(verdict, stopped=view.stopped)
            at = _replay_step(job, n) if ended else n
            shares = windowed_loads(loads[max(0, at - WINDOW) : at])[-1]
            show_chart(
                charts.load_bars(
                    shares,
                    title=f"Expert load at step {at}",
                    balanced=BALANCED_SHARE / len(shares),
                    height=280,
                ),
                key="balance_main_bars",
                summary=f"At step {at} (mean of steps {max(1, at - WINDOW + 1)}–{at}): "
                + summarise_load(shares),
                data=load_table(shares),
            )
        run_charts(
            loads,
            losses,
            prefix="balance_main",
            total=view.total,
            at_step=at if ended else None,
            verdict=verdict,
        )
        if ended:
            st.markdown(f"**Why this verdict:** {verdict.summary()}.")
            with st.expander("The verdict rule"):
                st.markdown(RULE)


def _prediction() -> None:
    """Predict before the first run without balancing; after it, say whether the prediction held."""
    if predict is None:
        return
    job = job_in(MAIN)
    view = job.view() if job is not None else None
    done = view is not None and not view.running and view.results[0] is not None
    if done and job.specs[0].config.balance == "none" and not view.stopped:
        history = view.results[0].history
        verdict = judge(history.load, history.loss)
        reveal(4, "balance_off", OUTCOMES[verdict.load], f"By the verdict rule: {verdict.summary()}.")
    else:
        predict(4, "balance_off", QUESTION, list(OUTCOMES.values()))


def _controls() -> None:
    with st.form("balance_form", border=False):
        st.radio("Balancing", tuple(MODES), format_func=MODES.get, key="balance_mode")
        submitted = st.form_submit_button("Train", type="primary", icon=":material/play_arrow:")
        with st.expander("Model and training settings"):
            st.slider(
                "Aux-loss coefficient α",
                0.0,
                0.3,
                step=0.01,
                key="balance_alpha",
                help="Used by the auxiliary-loss mode. Switch used 0.01; try it here.",
            )
            st.slider("Experts E", 4, 16, key="balance_experts")
            st.slider("Top-k", 1, 2, key="balance_topk")
            st.slider("Steps", 50, 2000, step=50, key="balance_steps")
            st.select_slider("Learning rate (Adam)", LEARNING_RATES, key="balance_lr")
            st.number_input("Seed", 0, 9999, step=1, key="balance_seed")
            st.slider(
                "Router noise σ (0 = off)",
                0.0,
                2.0,
                step=0.1,
                key="balance_noise",
                help="Gaussian noise on the router logits while training (noisy top-k gating).",
            )
            st.slider(
                "Capacity factor (0 = no limit)",
                0.0,
                4.0,
                step=0.25,
                key="balance_cf",
                help="An expert takes at most ceil(CF·T·k/E) slots; the rest are dropped.",
            )
            st.toggle("Router z-loss", key="balance_zloss", help="ST-MoE's z-loss with coefficient 0.001.")
    notes = st.session_state["balance_notices"]
    if notes:
        st.caption("Link settings adjusted: " + "; ".join(notes.values()))
    write_settings_to_url()
    st.caption("The same seed always reproduces the same run.")
    if submitted:
        notes.clear()
        try:
            launch(MAIN, [RunSpec(config())])
        except ValueError as e:  # a setting the engine refuses (e.g. top-k > experts)
            st.error(f"These settings cannot be trained: {e}", icon=":material/error:")
            return
        st.rerun(scope="app")  # the page below (details, comparison) shows the new run too
    elif job_in(MAIN) is None:
        _show_cached_run()


def _show_cached_run() -> None:
    """Revisiting: if anyone trained these settings already, show that run at once."""
    try:
        spec = RunSpec(config())
    except ValueError:
        return
    result = cached_result(spec)
    if result is not None:
        st.session_state[f"balance_job_{MAIN}"] = Job.finished([spec], [result])


def _untrained_bars() -> None:
    """Before the first run: the untrained router's load on held-out tokens (balanced by design)."""
    try:
        result = run(RunSpec(config(steps=0)))
    except Exception:  # a nicety: without it the learner still has Train and the form
        _log.exception("the untrained model's load could not be computed")
        st.info("Press **Train** to train the model; the charts update while it trains.")
        return
    load = result.stats.load
    show_chart(
        charts.load_bars(
            load,
            title="Expert load before training (held-out tokens)",
            balanced=BALANCED_SHARE / len(load),
            height=280,
        ),
        key="balance_main_bars",
        summary="Before training: " + summarise_load(load),
        data=load_table(load),
    )
    st.info("Press **Train**: these bars move while the model trains.", icon=":material/play_arrow:")


def _verdict_line(verdict: Verdict, *, stopped: bool) -> None:
    so_far = " so far (stopped)" if stopped else ""
    text = f"**Verdict{so_far}: {verdict.label}.**"
    if verdict.label == "collapsed" and verdict.spikes:
        text += " The loss spiked as well."
    st.markdown(f"{text} The rule and the numbers are under the charts.")


def _replay_step(job: Job, steps: int) -> int:
    """A slider over the recorded steps; its key names the run, so a new run starts at its end."""
    if steps < 2:
        return steps
    key = f"balance_replay_{abs(hash(job.specs[0])) % 10**8}_{steps}"
    return int(
        st.slider(
            "Replay the run: step",
            1,
            steps,
            value=steps,
            key=key,
            help="Scrub the recorded run: the load bars and the marker on the curves follow.",
        )
    )


def _switch_now_button(job: Job) -> None:
    if job.specs[0].config.balance != "none":
        return
    method = st.session_state["balance_switch_to"]
    st.button(
        f"Switch on {MODES[method]} now",
        key="balance_switch_now",
        on_click=continue_main,
        icon=":material/healing:",
        help="Stops this run and continues it with balancing: the recovery experiment below shows the rest.",
    )


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
