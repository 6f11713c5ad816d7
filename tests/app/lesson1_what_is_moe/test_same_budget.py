"""Lesson 1's "measured here" panel: the MoE LM against two dense models on the same tokens."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from lessons.lesson1_what_is_moe.figures import smooth
from lessons.lesson1_what_is_moe.same_budget import OUTCOMES, outcome
from moe_core.lm import SHIPPED
from tests.app.conftest import REPO, chart_spec, texts

RUNS = json.loads((SHIPPED / "comparison.json").read_text())["runs"]


@pytest.fixture
def lesson1(open_lesson) -> AppTest:
    return open_lesson(1)


def test_smooth_is_a_trailing_mean() -> None:
    values = [4.0, 2.0, 6.0, 0.0, 3.0]
    expected = pd.Series(values).rolling(3, min_periods=1).mean().tolist()
    assert smooth(values, 3) == pytest.approx(expected)
    assert smooth(values, 1) == pytest.approx(values)
    with pytest.raises(ValueError):
        smooth(values, 0)


def test_curves_follow_the_recorded_runs_and_the_controls(lesson1: AppTest) -> None:
    def mean(key: str, window: int) -> np.ndarray:
        return pd.Series(RUNS[key]["loss"]).rolling(window, min_periods=1).mean().to_numpy()

    window = lesson1.slider(key="intro_budget_window").value
    spec = chart_spec(lesson1, "intro_budget_chart")  # first view: the gap to the small dense model
    assert [t["name"] for t in spec["data"]] == ["(a) MoE", "(c) big dense"]
    for trace, key in zip(spec["data"], ("moe", "dense_total"), strict=True):
        assert trace["y"] == pytest.approx((mean(key, window) - mean("dense_active", window)).tolist())
        assert trace["x"][-1] == pytest.approx(1.6384)  # 400 steps x 16 x 256 tokens, in millions
    lesson1.segmented_control(key="intro_budget_view").set_value("loss").run()
    lesson1.slider(key="intro_budget_window").set_value(1).run()
    lesson1.segmented_control(key="intro_budget_axis").set_value("training time").run()
    assert not lesson1.exception
    spec = chart_spec(lesson1, "intro_budget_chart")
    assert [t["name"] for t in spec["data"]] == ["(a) MoE", "(b) small dense", "(c) big dense"]
    big = spec["data"][2]
    assert big["y"] == pytest.approx(RUNS["dense_total"]["loss"])  # raw, unsmoothed
    assert big["x"][-1] == pytest.approx(RUNS["dense_total"]["seconds"][-1] / 60)
    assert lesson1.query_params["intro_budget_axis"] == "training time"
    assert lesson1.query_params["intro_budget_view"] == "loss"


def test_the_table_shows_the_held_out_numbers(lesson1: AppTest) -> None:
    table = next(df.value for df in lesson1.dataframe if "bits/byte, code" in df.value.columns)
    assert table["model"].tolist() == ["(a) MoE", "(b) small dense", "(c) big dense"]
    for row, key in zip(table.itertuples(index=False), ("moe", "dense_active", "dense_total"), strict=True):
        assert float(row[3]) == pytest.approx(RUNS[key]["heldout_bpb"]["code"], abs=5e-4)
        assert float(row[4]) == pytest.approx(RUNS[key]["heldout_bpb"]["prose"], abs=5e-4)


def test_the_reveal_names_where_the_moe_landed(lesson1: AppTest) -> None:
    mean = {k: np.mean([RUNS[k]["heldout_bpb"][g] for g in ("code", "prose")]) for k in RUNS}
    lo, hi = sorted([mean["dense_active"], mean["dense_total"]])
    if abs(mean["moe"] - mean["dense_active"]) < 0.002:
        expected = "Level with the small dense model"
    elif mean["moe"] < lo:
        expected = "Below both dense models"
    else:
        expected = "Above both dense models" if mean["moe"] > hi else "Between the two dense models"
    assert outcome(RUNS) == expected
    wrong = next(o for o in OUTCOMES if o != expected)
    lesson1.radio(key="predict_1_same_budget_choice").set_value(wrong)
    lesson1.button(key="FormSubmitter:predict_1_same_budget-Lock in my prediction").click().run()
    assert not lesson1.exception
    assert f"what happened: **{expected}**" in "\n".join(str(i.value) for i in lesson1.info)
    assert f"{RUNS['moe']['heldout_bpb']['code']:.3f} (code)" in texts(lesson1)


def test_the_prose_matches_the_measurement() -> None:
    """65_same_budget.md says the big dense model costs several times the MoE's compute per token
    and much longer to train on the same tokens: hold it to the recorded runs."""
    prose = (REPO / "lessons/content/lesson1/65_same_budget.md").read_text()
    assert "several times its compute" in prose and "much longer" in prose
    moe, big = RUNS["moe"], RUNS["dense_total"]
    assert big["params_active"] / moe["params_active"] >= 2.0
    assert big["train_seconds"] / moe["train_seconds"] >= 1.5


def test_the_recap_says_the_moe_landed_between_the_dense_models() -> None:
    recap = (REPO / "lessons/content/lesson1/99_recap.md").read_text()
    assert "landed between it and the dense model with the MoE's total parameters" in recap
    for genre in ("code", "prose"):
        small, moe, big = (RUNS[k]["heldout_bpb"][genre] for k in ("dense_active", "moe", "dense_total"))
        assert big < moe < small, (genre, big, moe, small)


def test_the_moe_starts_behind_the_small_dense_model_and_overtakes_it() -> None:
    prose = (REPO / "lessons/content/lesson1/65_same_budget.md").read_text()
    assert "starts behind the small dense model" in prose and "overtakes it later" in prose
    gap = (pd.Series(RUNS["moe"]["loss"]).rolling(25, min_periods=1).mean()
           - pd.Series(RUNS["dense_active"]["loss"]).rolling(25, min_periods=1).mean()).to_numpy()
    early = gap[: len(gap) // 3]
    assert early.max() > 0.02 and gap[-1] < 0, (early.max(), gap[-1])


def test_a_missing_recording_is_a_notice_not_a_traceback(open_lesson, monkeypatch) -> None:
    from lessons.lesson1_what_is_moe import same_budget

    def unreadable():
        raise OSError("gone")

    same_budget.comparison.cache_clear()
    monkeypatch.setattr(same_budget, "load_comparison", unreadable)
    try:
        at = open_lesson(1)
        assert any("comparison.json) is missing or unreadable" in str(i.value) for i in at.info)
    finally:
        same_budget.comparison.cache_clear()


def test_trained_three_times_as_long_the_lead_grows(lesson1: AppTest) -> None:
    prose = (REPO / "lessons/content/lesson1/65_same_budget.md").read_text()
    assert "the MoE's lead grew on both kinds of text" in prose
    longer = json.loads((SHIPPED / "comparison_long.json").read_text())
    assert longer["tokens"] == 3 * 1638400 and set(longer["runs"]) == {"moe", "dense_active"}
    def lead(runs: dict, genre: str) -> float:
        return runs["dense_active"]["heldout_bpb"][genre] - runs["moe"]["heldout_bpb"][genre]

    for genre in ("code", "prose"):
        short, long = lead(RUNS, genre), lead(longer["runs"], genre)
        assert long > short > 0, (genre, short, long)
        assert f"to {long:.3f}" in texts(lesson1)
