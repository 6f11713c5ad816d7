"""Lesson 3 (experts and sparse compute) in AppTest: every control changes what the figures show.

Expected numbers are computed here from first principles (stable argsort, ceil-division padding,
C = ceil(CF·T·k/E), FLOP formulas) on the same live batch — the demo router's top-k over the
example sentences — rather than read back from the lesson's helpers.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from lessons.course.text import LESSONS
from lessons.lesson3_experts.bench import FFN, HIDDEN, on_gpu, stored_results
from moe_core.router import softmax_topk
from moe_core.router_demo import load_router_demo
from moe_core.text_data import EXAMPLES
from tests.app.conftest import texts
from tests.app.lesson2_router.test_lesson2 import figure

PAGE = LESSONS[2].page
EXPERTS = 8


def batch_ids(tokens: int, top_k: int) -> torch.Tensor:
    """topk_ids [T, K] of the first T example tokens, routed here without the lesson's code."""
    model = load_router_demo()
    with torch.no_grad():
        logits = torch.cat([model.moe.router.gate(model.sentence_hidden(s)[2]) for s in EXAMPLES.values()])
    return softmax_topk(logits[:tokens], top_k).topk_ids


def padded_blocks(ids: torch.Tensor, block: int) -> list[int]:
    """Expert id of every M-block: ceil(n_e / B) blocks per expert, in expert order."""
    counts = torch.bincount(ids.flatten(), minlength=EXPERTS).tolist()
    return [e for e, n in enumerate(counts) for _ in range(math.ceil(n / block))]


def frame_with(at: AppTest, column: str):
    """The first dataframe on the page that has `column` (panels rerun alone, so indices move)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


@pytest.fixture
def lesson3(open_page) -> AppTest:
    at = open_page(PAGE)
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_all_panels_render_with_the_kernel_source(lesson3: AppTest) -> None:
    for key in ("experts_dispatch_chart", "experts_blocks_chart", "experts_tiles_chart",
                "experts_capacity_chart", "experts_kernel_chart"):
        figure(lesson3, key)
    code = "\n".join(c.value for c in lesson3.code)
    assert "def grouped_gemm_kernel(" in code
    assert "expert = tl.load(block_expert_ids_ptr + pid_m)" in code
    assert lesson3.query_params["experts_tokens"] == "16"
    assert "Press the button" in texts(lesson3)


def test_tokens_and_k_sliders_re_sort_the_live_batch(lesson3: AppTest) -> None:
    lesson3.slider(key="experts_tokens").set_value(32).run()
    lesson3.slider(key="experts_k").set_value(3).run()
    ids = batch_ids(32, 3)
    expert_of_slot = ids.flatten()
    sorted_row = torch.empty_like(expert_of_slot)
    sorted_row[torch.argsort(expert_of_slot, stable=True)] = torch.arange(expert_of_slot.numel())
    spec = figure(lesson3, "experts_dispatch_chart")
    markers = [t for t in spec["data"] if t["mode"] == "markers"]
    for trace in markers:
        e = int(trace["name"].split()[0][1:])
        slots = [s for s in range(96) if int(expert_of_slot[s]) == e]
        assert trace["x"] == slots + [int(sorted_row[s]) for s in slots]
    assert sum(len(t["x"]) for t in markers) == 2 * 96
    counts = frame_with(lesson3, "E0").loc["slots n_e"].astype(int).tolist()
    assert counts == torch.bincount(expert_of_slot, minlength=EXPERTS).tolist()
    # The same callback reran the block view: its columns follow the new batch.
    blocks = figure(lesson3, "experts_blocks_chart")["layout"]["xaxis"]["ticktext"]
    assert blocks == [f"E{e}" for e in padded_blocks(ids, 16)]


def test_block_size_changes_padding_and_the_launch_grid(lesson3: AppTest) -> None:
    lesson3.select_slider(key="experts_block").set_value(4).run()
    ids = batch_ids(16, 2)
    expected = padded_blocks(ids, 4)
    ticks = figure(lesson3, "experts_blocks_chart")["layout"]["xaxis"]["ticktext"]
    assert ticks == [f"E{e}" for e in expected]
    metrics = {m.label: m.value for m in lesson3.metric}
    assert metrics["padded rows"] == str(4 * len(expected))
    assert metrics["bound N + E(B−1)"] == str(32 + EXPERTS * 3)
    grid = figure(lesson3, "experts_tiles_chart")["data"][0]
    assert len(grid["z"]) == len(expected)  # one row of tiles per M-block
    assert [row[0] - 1 for row in grid["z"]] == expected
    assert "BLOCK_M ≥ 16" in texts(lesson3)


def test_width_and_block_n_set_the_programs(lesson3: AppTest) -> None:
    lesson3.select_slider(key="experts_width").set_value(256).run()
    lesson3.select_slider(key="experts_block_n").set_value(16).run()
    grid = figure(lesson3, "experts_tiles_chart")["data"][0]
    pids = np.array(grid["text"], dtype=int)
    num_m = len(padded_blocks(batch_ids(16, 2), 16))
    assert pids.shape == (num_m, 256 // 16)
    assert sorted(pids.flatten().tolist()) == list(range(num_m * 16))  # each tile one program
    # Grouped ordering: consecutive programs walk down one column of up to GROUP_M = 8 M-blocks.
    assert pids[: min(num_m, 8), 0].tolist() == list(range(min(num_m, 8)))
    assert f"One launch of {num_m * 16} programs" in texts(lesson3)


def test_capacity_factor_drops_the_overflow_of_busy_experts(lesson3: AppTest) -> None:
    lesson3.slider(key="experts_capacity").set_value(0.5).run()
    ids = batch_ids(16, 2)
    capacity = math.ceil(0.5 * 16 * 2 / EXPERTS)
    counts = torch.bincount(ids.flatten(), minlength=EXPERTS).tolist()
    spec = figure(lesson3, "experts_capacity_chart")
    assert spec["data"][0]["y"] == [min(n, capacity) for n in counts]
    assert spec["data"][1]["y"] == [max(0, n - capacity) for n in counts]
    dropped = sum(max(0, n - capacity) for n in counts)
    metrics = {m.label: m.value for m in lesson3.metric}
    assert metrics["dropped slots"] == f"{dropped} of 32"
    assert len(frame_with(lesson3, "word")) == dropped
    lesson3.slider(key="experts_capacity").set_value(3.0).run()
    assert sum(figure(lesson3, "experts_capacity_chart")["data"][1]["y"]) == 0
    assert {m.label: m.value for m in lesson3.metric}["drop rate"] == "0.0%"


def test_tile_slider_follows_one_m_block_through_the_lookup(lesson3: AppTest) -> None:
    blocks = padded_blocks(batch_ids(16, 2), 16)
    lesson3.slider(key="experts_tile").set_value(3).run()
    bars = figure(lesson3, "experts_kernel_chart")["data"][0]
    assert bars["marker"]["line"]["width"] == [3 if m == 3 else 0 for m in range(len(blocks))]
    assert f"expert = {blocks[3]}" in texts(lesson3)
    assert lesson3.query_params["experts_tile"] == "3"


def test_benchmark_button_times_three_paths_and_checks_triton(lesson3: AppTest) -> None:
    lesson3.select_slider(key="experts_bench_tokens").set_value(16).run()
    lesson3.select_slider(key="experts_bench_k").set_value(1).run()
    flops_table = frame_with(lesson3, "forward FLOPs")
    assert flops_table.loc["sparse (k experts per token)", "forward FLOPs"] == \
        f"{2 * 16 * HIDDEN * 8 + 6 * 16 * 1 * HIDDEN * FFN:,}"  # fmt: skip
    lesson3.select_slider(key="experts_bench_experts").set_value(32).run()
    flops_table = frame_with(lesson3, "forward FLOPs")
    assert flops_table.loc["all E experts on every token", "forward FLOPs"] == \
        f"{2 * 16 * HIDDEN * 32 + 6 * 16 * 32 * HIDDEN * FFN:,}"  # fmt: skip
    assert lesson3.query_params["experts_bench_experts"] == "32"
    lesson3.button(key="experts_bench_run").click().run()
    assert not lesson3.exception
    assert "Finished: 3 of 3" in lesson3.get("progress")[0].proto.text
    table = lesson3.table[0].value
    assert list(table.index) == ["naive per-expert loop", "sorted grouped path (torch)", "Triton kernel"]
    assert all(float(d) < 1e-4 for d in table["max |Δ| vs sorted torch"])
    bars = figure(lesson3, "experts_bench_chart")["data"][0]["y"]
    if not torch.cuda.is_available():
        assert "(Triton interpreter)" in table["device"].iloc[2]
        assert "not kernel speed" in texts(lesson3)
        assert "Triton kernel" not in bars  # interpreter time is never drawn as a speed


def test_bad_url_values_are_clamped_or_replaced_with_a_notice(open_page) -> None:
    at = open_page(PAGE, query={"experts_block": "5", "experts_capacity": "lots", "experts_tokens": "1000"})
    assert not at.exception
    assert at.select_slider(key="experts_block").value == 4
    assert at.slider(key="experts_capacity").value == 1.0
    assert at.slider(key="experts_tokens").value == 96
    shown = texts(at)
    assert "Link settings adjusted" in shown and "must be one of 4, 8, 16, 32, 64" in shown


def test_stored_results_are_read_whatever_their_layout(tmp_path) -> None:
    assert stored_results(tmp_path / "missing") == []
    machine = {"device": "NVIDIA H100", "torch": "2.13.0"}  # bench/bench_moe.py --json writes this layout
    (tmp_path / "a.json").write_text(json.dumps({"machine": machine, "rows": [{"T": 16, "ms": 0.1}]}))
    (tmp_path / "b.json").write_text(json.dumps([{"T": 4096, "tflops": 400.0}]))
    (tmp_path / "c.json").write_text("{not json")
    found = stored_results(tmp_path)
    assert [f[0] for f in found] == ["a.json", "b.json"]
    assert found[0][1] == [{"T": 16, "ms": 0.1}]
    assert found[0][2] == {"machine.device": "NVIDIA H100", "machine.torch": "2.13.0"}
    assert found[1][1] == [{"T": 4096, "tflops": 400.0}]
    assert on_gpu("a.json", found[0][2])
    assert not on_gpu("cpu.json", {"machine.device": "x86_64"})
    assert on_gpu("gpu_h100.json", {})


def test_gpu_results_appear_in_the_lesson_when_present(open_page, tmp_path, monkeypatch) -> None:
    import lessons.lesson3_experts.bench as bench

    monkeypatch.setattr(bench, "RESULTS_DIR", tmp_path)  # where bench/bench_moe.py --json writes
    (tmp_path / "cpu.json").write_text(json.dumps({"machine": {"device": "x86_64"}, "rows": [{"ms": 9.0}]}))
    at = open_page(PAGE)
    shown = texts(at)
    assert "No GPU measurements are stored yet" in shown and "Stored CPU measurements" in shown
    rows = [{"shape": "prefill", "path": "triton", "TFLOP/s": 512.0}]
    (tmp_path / "gpu.json").write_text(json.dumps({"machine": {"device": "NVIDIA H100"}, "rows": rows}))
    at.run()
    shown = texts(at)
    assert "No GPU measurements" not in shown and "NVIDIA H100" in shown
    assert frame_with(at, "TFLOP/s")["TFLOP/s"].tolist() == [512.0]
