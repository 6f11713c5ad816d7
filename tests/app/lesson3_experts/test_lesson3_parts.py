"""Lesson 3's pure parts without Streamlit: the honest timing chart, the tile diagram, the
prediction texts and the outcomes computed from live numbers."""

from __future__ import annotations

import math

import pytest

from lessons.lesson3_experts import figures as charts
from lessons.lesson3_experts import predictions as pr
from moe_core.dispatch import align_block_size


def test_timing_bars_start_at_zero_and_state_ratios_to_the_torch_path() -> None:
    fig = charts.bench_bars(["loop", "sorted", "other"], [1.04, 1.0, 2.5], ["", "", ""], reference=1)
    axis = fig["layout"]["yaxis"]
    assert axis.get("type") != "log"
    assert axis["range"][0] == 0  # bar heights are proportional to time
    assert fig["data"][0]["y"] == [1.04, 1.0, 2.5]
    assert fig["data"][0]["text"] == ["1.04 ms (1.04×)", "1 ms", "2.5 ms (2.50×)"]  # a 4% gap reads as 1.04×

def test_dispatch_overview_puts_every_slot_in_its_experts_m_block() -> None:
    import torch

    ids = torch.tensor([[2, 0], [1, 2], [2, 3], [0, 2]])  # lesson3/20's worked example
    d = align_block_size(ids, 4, 4)
    labels = [f"slot {s}" for s in range(8)]
    fig = charts.dispatch_overview(ids.flatten().tolist(), d.sorted_slot_ids.tolist(),
                                   d.block_expert_ids.tolist(), 4, labels, 4)  # fmt: skip
    markers = {t["name"]: t for t in fig["data"] if t.get("mode") == "markers"}
    # Sorted and padded: 1 6 8 8 | 2 8 8 8 | 0 3 4 7 | 5 8 8 8 (8 = padding)
    assert sorted(markers["padding"]["x"]) == [2, 3, 5, 6, 7, 13, 14, 15]
    for e, rows in {0: [0, 1], 1: [4], 2: [8, 9, 10, 11], 3: [12]}.items():
        t = markers[f"E{e}"]
        assert sorted(x for x, y in zip(t["x"], t["y"], strict=True) if y == 0.0) == rows
    assert [a["text"] for a in fig["layout"]["annotations"]] == ["E0", "E1", "E2", "E3"]


def test_gemm_tiles_highlights_the_programs_rows_columns_and_k_steps() -> None:
    fig = charts.gemm_tiles([0, 2, 2], [3, 16, 5], 16, 128, 32, 64, 16, 1, 2)
    shapes = fig["layout"]["shapes"]
    tile = [s for s in shapes if s["line"]["width"] == 3]
    assert len(tile) == 1 and tile[0]["x0"] == pytest.approx(2 * 6.0 / 4)  # pid_n 2 of 4 N-blocks
    k_steps = [s for s in shapes if s["line"]["width"] == 1 and s["fillcolor"] == "rgba(0,0,0,0)"]
    assert len(k_steps) == 64 // 16
    a_rows = fig["data"][0]["z"][::-1]  # A, top row first: expert + 1 on real rows, 0 on padding
    assert [row[0] for row in a_rows] == [1] * 3 + [0] * 13 + [3] * 16 + [3] * 5 + [0] * 11
    assert {len(row) for row in a_rows} == {64 // 16}  # one column per k-step
    texts = " ".join(a["text"] for a in fig["layout"]["annotations"])
    assert "W of E2" in texts and "4 k-steps" in texts and "[48 × 64]" in texts


@pytest.mark.parametrize(("key", "count"), [("padding_block", 3), ("capacity_drop", 4), ("bench_fastest", 4)])
def test_each_prediction_text_parses_with_the_options_the_outcomes_index(key: str, count: int) -> None:
    p = pr.load_prediction(key)
    assert p is not None, f"lessons/content/lesson3/predict_{key}.md is missing or malformed"
    assert len(p.options) == count and p.question.endswith("?") and p.why
    assert pr.load_prediction("no_such_key") is None


def test_padding_outcome() -> None:
    assert pr.padding_outcome([1, 10, 3, 2]) == pr.PADDING_GROWS  # short segments round up further
    assert pr.padding_outcome([64, 128]) == pr.PADDING_SAME  # multiples of both sizes
    assert pr.padded_rows([1, 10, 0], 16) == 32


def test_capacity_outcome_from_the_counts() -> None:
    # T = 16, k = 2, E = 4: balanced load 8. CF 2.0 -> C = 16; E0's 17 slots overflow first.
    assert pr.first_droppers([17, 5, 5, 5], 16, 2) == (2.0, [0])
    assert pr.capacity_outcome([17, 5, 5, 5], 16, 2) == pr.DROP_BUSIEST
    assert pr.capacity_outcome([8, 8, 8, 8], 16, 2) == pr.DROP_NONE  # C >= 8 all the way down to CF 1.0
    first_cf, over = pr.first_droppers([12, 10, 6, 4], 16, 2)
    assert over == [0] and math.ceil(first_cf * 16 * 2 / 4) == 11  # the first C below 12


def test_fastest_outcome_from_measured_times() -> None:
    assert pr.fastest_outcome({"loop": 0.3, "torch": 0.2, "triton": 900.0}) == pr.FASTEST_SORTED
    assert pr.fastest_outcome({"loop": 0.1, "torch": 0.2, "triton": 0.3}) == pr.FASTEST_LOOP
    assert pr.fastest_outcome({"loop": 1.0, "torch": 1.05, "triton": 1.09}) == pr.FASTEST_TIE
    assert pr.fastest_outcome({"loop": 0.4, "torch": 0.5, "triton": float("nan")}) == pr.FASTEST_LOOP
    with pytest.raises(ValueError, match="no backend ran"):
        pr.fastest_outcome({"triton": float("nan")})
