"""Lesson 4's recorded language-model runs: no balancing against the Switch auxiliary loss.

The prose in 95_real_lm.md makes four claims about those runs; each is checked here against the
recorded shares, computed directly (means and minima of the raw shares), not through the page.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from moe_core.collapse_verdict import judge
from moe_core.lm import SHIPPED
from tests.app.conftest import REPO, chart_spec

RUNS = json.loads((SHIPPED / "comparison.json").read_text())["runs"]
PROSE = (REPO / "lessons/content/lesson4/95_real_lm.md").read_text()
RECAP = (REPO / "lessons/content/lesson4/99_recap.md").read_text()


def end_shares(name: str) -> np.ndarray:
    """[L, E] mean share per expert over the last 10 recorded points."""
    return np.asarray(RUNS[name]["expert_share"][-10:]).mean(axis=0)


def test_without_balancing_every_layer_ends_with_a_busier_top_expert() -> None:
    assert "every layer ends with a busier top expert" in PROSE
    free, aux = end_shares("no_balancing"), end_shares("moe")
    assert (free.max(axis=1) > aux.max(axis=1)).all(), (free.max(axis=1), aux.max(axis=1))


def test_with_the_aux_loss_no_expert_dies_and_without_it_a_layer_collapses() -> None:
    assert "every expert in every layer is alive at the end" in PROSE and "nearly stopped receiving" in PROSE
    assert "at least one layer collapses by the rule" in PROSE
    experts = end_shares("moe").shape[1]
    assert end_shares("moe").min() >= 0.1 / experts  # above the rule's dead line at the end ...
    recorded = zip(RUNS["moe"]["share_steps"], RUNS["moe"]["expert_share"], strict=True)
    early = [point for step, point in recorded if step <= 50]
    assert np.asarray(early).min() < 0.1 / experts  # ... after one batch below it early on
    run = RUNS["no_balancing"]
    steps = run["share_steps"]
    labels = []
    for layer in range(end_shares("no_balancing").shape[0]):
        per_step = [run["expert_share"][max(i for i, s in enumerate(steps) if s <= t)][layer]
                    for t in range(1, run["steps"] + 1)]  # fmt: skip
        labels.append(judge(per_step, run["loss"]).label)
    assert "collapsed" in labels, labels
    assert "one layer collapsed and the others went uneven" in RECAP
    assert labels.count("collapsed") == 1 and all(x in ("collapsed", "uneven") for x in labels), labels


def test_losing_experts_did_not_cost_held_out_quality_in_this_run() -> None:
    assert "losing experts did not cost quality" in PROSE and "the held-out loss did not suffer" in RECAP
    for genre in ("code", "prose"):
        assert RUNS["no_balancing"]["heldout_bpb"][genre] <= RUNS["moe"]["heldout_bpb"][genre] + 0.005


@pytest.fixture
def lesson4(open_lesson) -> AppTest:
    return open_lesson(4)


def test_the_panel_draws_the_chosen_layer(lesson4: AppTest) -> None:
    assert lesson4.segmented_control(key="balance_lm_layer").value == 3
    bars = chart_spec(lesson4, "balance_lm_bars_no_balancing")
    assert bars["data"][0]["y"] == pytest.approx(end_shares("no_balancing")[2].tolist())
    lesson4.segmented_control(key="balance_lm_layer").set_value(1).run()
    assert not lesson4.exception
    bars = chart_spec(lesson4, "balance_lm_bars_moe")
    assert bars["data"][0]["y"] == pytest.approx(end_shares("moe")[0].tolist())
    assert lesson4.query_params["balance_lm_layer"] == "1"
    table = next(df.value for df in lesson4.dataframe if "dead experts, end" in df.value.columns)
    assert len(table) == 2 * end_shares("moe").shape[0]
