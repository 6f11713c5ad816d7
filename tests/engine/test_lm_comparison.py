"""The same-budget comparison file behind Lessons 1 and 4 (moe_core.lm.comparison).

Built here from two smoke training runs, so `collect`/`build` are checked against what train-lm
wrote; and the shipped file is checked against the shipped models it describes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moe_core.lm import SHIPPED, MoELM
from moe_core.lm.comparison import COMPARISON, RUNS, build, cli, load_comparison, top_share
from moe_core.lm.train import cli as train_cli


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    runs = {"moe": [], "dense_active": ["--dense", "active"], "no_balancing": ["--aux-coef", "0"]}
    for name, flags in runs.items():
        assert train_cli(["--out", str(root / name), "--smoke", "--steps", "12", *flags]) == 0
    return {name: root / name for name in runs}


def test_build_keeps_every_step_and_the_expert_shares(smoke_runs: dict[str, Path]) -> None:
    data = build(smoke_runs, where="test")
    assert list(data["runs"]) == ["moe", "dense_active", "no_balancing"]  # RUNS order, not argument order
    moe, dense = data["runs"]["moe"], data["runs"]["dense_active"]
    history = json.loads((smoke_runs["moe"] / "loss_curve.json").read_text())
    assert moe["loss"] == [p["loss"] for p in history] and len(moe["loss"]) == data["steps"] == 12
    assert moe["share_steps"] == [1, 5, 10]
    for point in moe["expert_share"]:
        for layer in point:  # each layer's shares of one batch's routed slots
            assert sum(layer) == pytest.approx(1.0, abs=1e-3) and max(layer) <= 1 / 2 + 1e-3  # top-2
    assert dense["expert_share"] == [] and dense["params_total"] == dense["params_active"]
    assert data["runs"]["no_balancing"]["aux_coef"] == 0


def test_build_refuses_unequal_budgets_and_unknown_names(smoke_runs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown run names"):
        build({"bogus": smoke_runs["moe"]}, where="")
    longer = tmp_path / "longer"
    assert train_cli(["--out", str(longer), "--smoke", "--steps", "14"]) == 0
    with pytest.raises(ValueError, match="same token budget"):
        build({"moe": smoke_runs["moe"], "dense_active": longer}, where="")
    assert cli(["--run", f"moe={longer}", "--run", f"dense_active={smoke_runs['dense_active']}",
                "--out", str(tmp_path / "c.json")]) == 2  # a clear message, no traceback  # fmt: skip


def test_the_shipped_comparison_describes_the_shipped_architecture() -> None:
    data = load_comparison(COMPARISON)
    assert set(data["runs"]) == set(RUNS)
    total, active = MoELM.from_pretrained(SHIPPED).num_params()
    moe = data["runs"]["moe"]
    assert (moe["params_total"], moe["params_active"]) == (total, active)
    assert data["runs"]["dense_active"]["params_total"] == pytest.approx(active, rel=0.01)
    assert data["runs"]["dense_total"]["params_total"] == pytest.approx(total, rel=0.01)
    assert {(r["steps"], r["tokens"]) for r in data["runs"].values()} == {(data["steps"], data["tokens"])}
    for run in data["runs"].values():
        assert len(run["loss"]) == len(run["seconds"]) == data["steps"]


def test_top_share_is_the_busiest_expert_per_layer() -> None:
    assert top_share([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]) == [0.5, 0.8]
