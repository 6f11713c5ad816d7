"""Lesson 4 (load balancing) in AppTest: train from the page, watch it, stop it, recover, compare.

Training runs on worker threads and the page redraws while they train, so a test clicks, then
reruns the page until the run it started has ended (`until_idle`). The numbers the page shows are
checked against `moe_core.train.train` called here with the same settings (the engine is the
reference; the page must not compute its own). Only the runs a test needs are trained, and the
expensive ones are cached across tests by the page's own st.cache_data.
"""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from lessons.course.text import LESSONS
from moe_core.train import TrainConfig, train
from tests.app.conftest import texts

PAGE = LESSONS[3].page
SLOTS = ("main", "compare", "recovery", "sweep")


@pytest.fixture
def lesson4(open_page) -> AppTest:
    at = open_page(PAGE)
    assert not at.exception, [e.value for e in at.exception]
    yield at
    for slot in SLOTS:  # never leave a worker training into the next test
        if (running := job(at, slot)) is not None:
            running.stop(wait_s=30)


def job(at: AppTest, slot: str):
    try:
        return at.session_state[f"balance_job_{slot}"]
    except KeyError:
        return None


def until_idle(at: AppTest, slot: str, timeout_s: float = 120) -> AppTest:
    """Rerun the page until the job in `slot` has stopped training, then once more."""
    deadline = time.perf_counter() + timeout_s
    while (j := job(at, slot)) is not None and j.running:
        assert time.perf_counter() < deadline, f"{slot} still training after {timeout_s}s"
        time.sleep(0.2)
        at.run()
    return at.run()


def metric(at: AppTest, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]
    assert values, f"no metric {label!r}; have {[m.label for m in at.metric]}"
    return values[0]


def chart_keys(at: AppTest) -> set[str]:
    return {c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")}


def train_from_form(at: AppTest, **values) -> AppTest:
    for key, value in values.items():
        widget = at.radio(key=key) if key == "balance_mode" else at.slider(key=key)
        widget.set_value(value)
    at.button(key="FormSubmitter:balance_form-Train").click().run()
    return until_idle(at, "main")


def test_defaults_render_and_go_into_the_url(lesson4: AppTest) -> None:
    assert lesson4.radio(key="balance_mode").value == "none"
    assert lesson4.slider(key="balance_alpha").value == pytest.approx(0.05)
    assert lesson4.query_params["balance_steps"] == "300"
    assert lesson4.query_params["balance_mode"] == "none"
    assert "Press **Train**" in texts(lesson4)


def test_the_live_model_comes_before_the_reading(lesson4: AppTest) -> None:
    """Issue 17: Train, the balancing choice and a live load chart are drawn above the goals."""
    order = [n for n in walk(lesson4.main)]
    goals = next(
        i for i, n in enumerate(order) if "In this lesson you will learn to" in str(getattr(n, "value", ""))
    )
    first = {}
    for i, n in enumerate(order):
        key = getattr(n, "key", None) or getattr(getattr(n, "proto", None), "id", "")
        for name in ("FormSubmitter:balance_form-Train", "balance_mode", "balance_main_bars"):
            if name in str(key):
                first.setdefault(name, i)
    assert set(first) == {"FormSubmitter:balance_form-Train", "balance_mode", "balance_main_bars"}, first
    assert max(first.values()) < goals
    # Before any run the chart is the untrained router's load: balanced by design (issue 6).
    assert "before training" in chart_title(lesson4, "balance_main_bars")


def chart_title(at: AppTest, key: str) -> str:
    """The title shown above the chart drawn with `key`: the Markdown element just before it
    (lessons/course/charts.py prints a chart's title as page text)."""
    order = list(walk(at.main))
    ids = [str(getattr(getattr(n, "proto", None), "id", "")) for n in order]
    return str(order[next(i for i, id_ in enumerate(ids) if id_.endswith(key)) - 1].value)


def walk(node):
    """Every element of the AppTest tree, in the order the page draws them."""
    children = getattr(node, "children", None)
    if not children:
        yield node
        return
    for child in children.values():
        yield from walk(child)


def test_out_of_range_link_values_are_clamped_with_a_notice(open_page) -> None:
    at = open_page(
        PAGE, query={"balance_steps": "1000000000", "balance_mode": "magic", "balance_experts": "2"}
    )
    assert not at.exception
    assert at.slider(key="balance_steps").value == 2000
    assert at.slider(key="balance_experts").value == 4
    assert at.radio(key="balance_mode").value == "none"
    shown = texts(at)
    assert "Link settings adjusted" in shown and "1000000000" in shown and "magic" in shown
    assert at.query_params["balance_steps"] == "2000"


def test_no_balancing_collapses_and_balancing_changes_the_displayed_load(lesson4: AppTest) -> None:
    at = train_from_form(lesson4, balance_mode="none")
    expected = train(TrainConfig(balance="none", seed=0))
    assert metric(at, "Dead experts") == f"{expected.stats.dead_experts} of 8"
    assert expected.stats.dead_experts >= 4  # seed 0 collapses
    assert metric(at, "Max expert share") == f"{expected.stats.max_load:.2f}"
    assert {
        "balance_main_bars",
        "balance_main_time",
        "balance_main_loss",
        "balance_main_heatmap",
    } <= chart_keys(at)
    assert "What happened: collapse" in texts(at)

    at = train_from_form(at, balance_mode="aux-free")
    balanced = train(TrainConfig(balance="aux-free", seed=0))
    assert metric(at, "Dead experts") == "0 of 8" == f"{balanced.stats.dead_experts} of 8"
    assert metric(at, "Max expert share") == f"{balanced.stats.max_load:.2f}"
    assert at.query_params["balance_mode"] == "aux-free"


def spec_of(at: AppTest, key: str) -> dict:
    import json

    charts = [c for c in at.get("plotly_chart") if c.proto.id.endswith(key)]
    assert charts, f"no chart {key}"
    return json.loads(charts[0].proto.spec)


def test_the_verdict_follows_the_rule_over_the_whole_run_and_the_charts_mark_it(lesson4: AppTest) -> None:
    """Issue 18: E = 4 at lr 0.1 was called balanced; by the rule it is not, and its loss spiked."""
    from moe_core.collapse_verdict import judge

    lesson4.select_slider(key="balance_lr").set_value(0.1)
    at = train_from_form(lesson4, balance_mode="none", balance_experts=4)
    history = train(TrainConfig(num_experts=4, lr=0.1, seed=0)).history
    verdict = judge(history.load, history.loss)
    assert verdict.label != "balanced" and verdict.spikes  # what the engine's records say
    shown = texts(at)
    assert f"**Verdict: {verdict.label}.**" in shown
    assert verdict.summary() in shown and "1.5/E" in shown  # the numbers, and the rule itself
    loss = spec_of(at, "balance_main_loss")
    marks = [t for t in loss["data"] if t.get("name") == "loss spike (verdict rule)"]
    assert marks and marks[0]["x"] == list(verdict.spikes)


def test_a_collapse_is_shaded_where_the_rule_found_it(lesson4: AppTest) -> None:
    from moe_core.collapse_verdict import judge

    at = train_from_form(lesson4, balance_mode="none")
    history = train(TrainConfig(seed=0)).history
    ((first, last),) = judge(history.load, history.loss).collapse_spans
    bars = [s for s in spec_of(at, "balance_main_time")["layout"]["shapes"] if s.get("name") == "collapse"]
    assert [(b["x0"], b["x1"]) for b in bars] == [(first, last)]


def test_replay_scrubs_the_recorded_run(lesson4: AppTest) -> None:
    at = train_from_form(lesson4, balance_mode="none")
    history = train(TrainConfig(seed=0)).history
    replay = next(s for s in at.slider if (s.key or "").startswith("balance_replay_"))
    assert replay.value == 300 and replay.max == 300
    replay.set_value(20).run()
    bars = spec_of(at, "balance_main_bars")
    expected = [sum(row[e] for row in history.load[10:20]) / 10 for e in range(8)]
    assert bars["data"][0]["y"] == pytest.approx(expected)
    assert "step 20" in chart_title(at, "balance_main_bars")
    assert "At step 20 (mean of steps 11–20)" in texts(at)
    for key in ("balance_main_time", "balance_main_loss"):
        lines = [s for s in spec_of(at, key)["layout"]["shapes"] if s.get("name") == "replay"]
        assert [ln["x0"] for ln in lines] == [20], key
    assert not at.exception


def test_the_default_comparison_shows_at_once_from_the_recording(lesson4: AppTest) -> None:
    """Issue 18: the five-seed comparison took 15.6 s; at the default settings it is recorded."""
    from lessons.lesson4_balancing.state import MODES
    from lessons.lesson4_balancing.sweep import load_recording, recorded_rows

    assert job(lesson4, "sweep") is None
    assert "balance_sweep_chart" in chart_keys(lesson4)
    rows = recorded_rows([TrainConfig(balance=m, seed=s) for m in MODES for s in range(5)], load_recording())
    table = next(d.value for d in lesson4.dataframe if "collapsed" in d.value.columns)  # not by position
    for mode, label in MODES.items():
        collapsed = sum(r.verdict == "collapsed" for r in rows if r.balance == mode)
        assert table.loc[label, "collapsed"] == f"{collapsed} of 5"
    assert "Recorded with these settings" in texts(lesson4)
    # Another setting is not in the recording: the button trains it (with a progress bar).
    at = train_from_form(lesson4, balance_alpha=0.1)
    assert "balance_sweep_chart" not in chart_keys(at)
    assert at.button(key="balance_sweep_btn").proto.label.startswith("Compare the three methods")


def test_predict_then_train_then_see_whether_the_prediction_held(lesson4: AppTest) -> None:
    """Issue 17: a prediction before the first run without balancing; the run's verdict answers it."""
    from lessons.lesson4_balancing.hero import OUTCOMES, QUESTION

    assert QUESTION in texts(lesson4)
    lesson4.radio(key="predict_4_balance_off_choice").set_value(OUTCOMES["balanced"])
    lesson4.button(key="FormSubmitter:predict_4_balance_off-Lock in my prediction").click().run()
    at = train_from_form(lesson4, balance_mode="none")  # seed 0 collapses (the rule, over the run)
    infos = [i.value for i in at.info]
    assert any(f"what happened: **{OUTCOMES['collapsed']}**" in i for i in infos), infos
    assert "By the verdict rule: collapsed over steps" in texts(at)


def test_charts_update_while_training_and_stop_stops(lesson4: AppTest) -> None:
    lesson4.slider(key="balance_steps").set_value(2000)
    lesson4.button(key="FormSubmitter:balance_form-Train").click().run()
    seen = []
    deadline = time.perf_counter() + 60
    while len(seen) < 2 and time.perf_counter() < deadline:  # two redraws with progress, mid-run
        time.sleep(0.3)
        lesson4.run()
        view = job(lesson4, "main").view()
        if view.running and view.progress is not None and "balance_main_time" in chart_keys(lesson4):
            seen.append(view.step)
    assert len(seen) == 2 and seen[0] < seen[1] < 2000, seen
    assert any("step" in p.proto.text for p in lesson4.get("progress"))
    lesson4.button(key="balance_stop_main").click().run()
    at = until_idle(lesson4, "main", timeout_s=30)
    view = job(at, "main").view()
    assert view.stopped and view.step < 2000
    assert f"Stopped at step {view.step} of 2000" in texts(at)


def test_recovery_brings_dead_experts_back(lesson4: AppTest) -> None:
    lesson4.number_input(key="balance_seed").set_value(2)
    at = train_from_form(lesson4, balance_mode="none", balance_steps=150)  # seed 2 collapses fast
    collapsed = job(at, "main").view().results[0].stats
    assert collapsed.dead_experts >= 5
    at.radio(key="balance_switch_to").set_value("aux-free").run()
    at.button(key="balance_continue_btn").click().run()  # continue *this* run with balancing on
    at = until_idle(at, "recovery")
    after = job(at, "recovery").view().results[0]
    assert after.step == 450 and after.stats.dead_experts == 0, after.stats
    shown = texts(at)
    assert f"{collapsed.dead_experts} of 8 experts were dead" in shown and "came back" in shown
    time_chart = [c for c in at.get("plotly_chart") if c.proto.id.endswith("balance_recovery_time")]
    assert time_chart and '"x0":150' in time_chart[0].proto.spec.replace(" ", "")  # the switch marker
    # The same experiment from its own button (collapse 150 steps, then 300 balanced) is the
    # same run, so it comes straight from the cache.
    at.slider(key="balance_switch_step").set_value(150)
    at.button(key="balance_recover_btn").click().run()
    assert not job(at, "recovery").running
    assert job(at, "recovery").view().results[-1].stats == after.stats


def test_same_seed_comparison_shows_both_runs(lesson4: AppTest) -> None:
    at = train_from_form(lesson4, balance_mode="none")
    at.button(key="balance_compare_btn").click().run()
    at = until_idle(at, "compare")
    assert {"balance_compare_chart", "balance_compare_loss"} <= chart_keys(at)
    dead = [m.value for m in at.metric if m.label == "Dead experts"]
    assert "0 of 8" not in dead[0] and len(dead) == 1  # main panel: collapsed
    assert not at.exception


def test_a_failing_run_shows_its_error_and_the_page_keeps_working(lesson4: AppTest) -> None:
    from lessons.lesson4_balancing.runs import Job, RunSpec

    # A continuation whose parent has another number of experts cannot load its state: a real
    # failure inside the worker, not a mock.
    parent = RunSpec(TrainConfig(num_experts=4, steps=5))
    bad = Job([RunSpec(TrainConfig(num_experts=8, steps=5), parent=parent)])
    assert bad.start()
    lesson4.session_state["balance_job_recovery"] = bad
    at = until_idle(lesson4, "recovery")
    errors = [e.value for e in at.error]
    assert any("This run failed" in e for e in errors), errors
    assert not at.exception
    at = train_from_form(at, balance_mode="none", balance_steps=50)  # the rest still trains
    assert metric(at, "Dead experts").endswith("of 8")


def test_a_third_concurrent_run_is_told_to_wait(lesson4: AppTest) -> None:
    lesson4.slider(key="balance_seeds").set_value(10)
    lesson4.slider(key="balance_steps").set_value(2000)
    lesson4.button(key="FormSubmitter:balance_form-Train").click().run()  # run 1
    lesson4.slider(key="balance_switch_step").set_value(1000)
    lesson4.button(key="balance_recover_btn").click().run()  # run 2
    assert job(lesson4, "main").running and job(lesson4, "recovery").running
    lesson4.button(key="balance_sweep_btn").click().run()  # run 3: refused
    assert any("Try again in a few seconds" in w.value for w in lesson4.warning)
    assert job(lesson4, "sweep") is None


# --- the figure builders alone (pure functions: no page, no model) -------------------------------


def test_load_bars_mark_dead_experts_and_the_fair_share() -> None:
    from lessons.lesson4_balancing.figures import load_bars

    fig = load_bars([0.7, 0.25, 0.05, 0.0])
    bar = fig.data[0]
    assert list(bar.y) == [0.7, 0.25, 0.05, 0.0]
    assert list(bar.text) == ["0.70", "0.25", "0.05", "dead"]  # 0.0 < 0.1 · 1/4; 0.05 is not dead
    assert fig.layout.shapes[0].y0 == fig.layout.shapes[0].y1 == 0.25


def test_load_over_time_stacks_every_expert_and_thins_long_runs() -> None:
    from lessons.lesson4_balancing.figures import MAX_POINTS, load_over_time, thin

    history = [[(s % 3) / 3, 1 - (s % 3) / 3] for s in range(1000)]
    fig = load_over_time(history, total_steps=2000, switch_step=400)
    assert [t.name for t in fig.data] == ["E0", "E1"] and all(t.stackgroup == "load" for t in fig.data)
    assert len(fig.data[0].x) == MAX_POINTS and fig.data[0].x[0] == 1 and fig.data[0].x[-1] == 1000
    assert list(fig.layout.xaxis.range) == [1, 2000]
    assert fig.layout.shapes[0].x0 == 400  # the recovery marker
    assert thin(5) == [0, 1, 2, 3, 4] and thin(10, 4) == [0, 3, 6, 9]


def test_domain_heatmap_rows_are_shares_of_each_domain() -> None:
    from lessons.lesson4_balancing.figures import domain_heatmap

    fig = domain_heatmap([[30, 10, 0], [0, 0, 5]])
    assert [list(row) for row in fig.data[0].z] == [[0.75, 0.25, 0.0], [0.0, 0.0, 1.0]]
    assert list(fig.data[0].x) == ["E0", "E1", "E2"] and list(fig.data[0].y) == ["domain 0", "domain 1"]


def test_side_by_side_and_seed_sweep_figures() -> None:
    from lessons.lesson4_balancing.figures_runs import compare_runs, seed_sweep

    runs = {"none": ([1.0, 0.0], [[0.5, 0.5], [1.0, 0.0]]), "bias": ([0.5, 0.5], [[0.5, 0.5]] * 2)}
    fig = compare_runs(runs, title="x")
    assert [a.text for a in fig.layout.annotations][:2] == ["none", "bias"]
    assert len(fig.data) == 2 * (1 + 2)  # per run: one bar trace + one band per expert
    sweep = seed_sweep({"none": [0.9, 0.6], "aux-free": [0.2, 0.15]}, num_experts=8)
    assert [list(t.x) for t in sweep.data] == [[0.9, 0.6], [0.2, 0.15]]
    assert sweep.layout.shapes[0].x0 == 1.5 / 8  # the verdict rule's balanced bound
