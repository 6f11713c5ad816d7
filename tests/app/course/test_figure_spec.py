"""course.figures.figure_spec: the spec made without Plotly's objects is the one Plotly would send.

Lesson 3's charts skip `go.Figure` in the app (they are redrawn on every slider move); the test
suite builds them through Plotly, validated. Both ways are compared here on random dispatches,
with Plotly's own `go.Figure(...).to_dict()` and JSON encoding as the reference.
"""

from __future__ import annotations

import json

import numpy as np
import plotly.io
import pytest
import torch

from lessons.course import figures
from lessons.lesson3_experts import figures as charts
from moe_core.dispatch import align_block_size
from tests.app.conftest import decode_plotly


def _sent(spec: dict) -> dict:
    """What the browser receives, as Streamlit encodes it, with Plotly's base64 arrays decoded.

    Validation writes the empty template as {"data": {"scatter": [{"type": "scatter"}]}}: trace
    defaults that set nothing but the type, as empty as {}; such entries are dropped."""
    sent = decode_plotly(json.loads(plotly.io.to_json(spec, validate=False)))
    template = sent["layout"].get("template")
    if isinstance(template, dict) and isinstance(template.get("data"), dict):
        kept = {kind: defaults for kind, defaults in template["data"].items()
                if any(set(d) - {"type"} for d in defaults)}  # fmt: skip
        template = {**template, "data": kept} if kept else {k: v for k, v in template.items() if k != "data"}
        sent["layout"]["template"] = template
    return sent


def _lesson3_specs(seed: int) -> list[dict]:
    gen = torch.Generator().manual_seed(seed)
    tokens, top_k, experts, block = 8 + 4 * seed, 1 + seed % 3, 8, (4, 16, 64)[seed % 3]
    ids = torch.randint(0, experts, (tokens, top_k), generator=gen)
    d = align_block_size(ids, experts, block)
    labels = [f"slot {s}" for s in range(tokens * top_k)]
    valid = (d.sorted_slot_ids < d.num_slots).reshape(-1, block).sum(1).tolist()
    blocks, rows = d.block_expert_ids.tolist(), d.sorted_slot_ids.tolist()
    sorted_slots = torch.argsort(ids.flatten(), stable=True).tolist()
    routed = torch.bincount(ids.flatten(), minlength=experts).tolist()
    slots = ids.flatten().tolist()
    return [
        charts.dispatch_overview(slots, rows, blocks, block, labels, experts, title="overview"),
        charts.dispatch_tracks(slots, sorted_slots, labels, experts, title="tracks"),
        charts.block_grid(rows, blocks, block, d.num_slots, labels, experts, highlight=0, title="blocks"),
        charts.launch_grid(blocks, valid, block, 128, 32, 8, experts, title="grid"),
        charts.tile_strip(blocks, valid, block, selected=len(blocks) - 1, title="strip"),
        charts.gemm_tiles(blocks, valid, block, 128, 32, 32, 16, 0, 1, title="tile"),
        charts.capacity_bars(routed, [min(r, 3) for r in routed], 3, title="capacity"),
        charts.bench_bars(["loop", "sorted", "triton"], [2.0, 1.0, 0.5], ["a", "b", "c"], reference=0,
                          title="bench"),
    ]


@pytest.mark.parametrize("seed", range(4))
def test_the_app_path_sends_what_plotly_would(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(figures, "CHECK_FIGURES", True)  # through go.Figure, validated: the reference
    reference = _lesson3_specs(seed)
    monkeypatch.setattr(figures, "CHECK_FIGURES", False)  # the app's path
    fast = _lesson3_specs(seed)
    assert all(isinstance(spec, dict) and set(spec) == {"data", "layout"} for spec in fast)
    for ref, spec in zip(reference, fast, strict=True):
        assert _sent(spec) == _sent(ref), ref["layout"].get("title")


def test_a_misspelt_property_still_fails_under_test() -> None:
    assert figures.CHECK_FIGURES  # tests/conftest.py
    with pytest.raises(ValueError, match="colour"):
        figures.figure_spec([{"type": "bar", "x": [1], "y": [2], "marker": {"colour": "red"}}], {})


def test_numpy_arrays_reach_the_browser_as_the_same_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    data = [{"type": "heatmap", "z": np.arange(6, dtype=np.float32).reshape(2, 3)}]
    monkeypatch.setattr(figures, "CHECK_FIGURES", False)
    fast = figures.figure_spec(data, {"height": 200})
    monkeypatch.setattr(figures, "CHECK_FIGURES", True)
    assert _sent(fast) == _sent(figures.figure_spec(data, {"height": 200}))
    assert _sent(fast)["data"][0]["z"] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def test_sending_a_chart_leaves_the_cached_figure_as_it_was() -> None:
    """Figures are cached and shared between learners: lifting the title and encoding the spec
    (which pops each trace's "uid" in place) must not change the figure or spec they came from."""
    import plotly.graph_objects as go

    from lessons.course.charts import lift_title

    fig = go.Figure(data=[{"type": "bar", "x": [1], "y": [2], "uid": "a"}],
                    layout={"title": {"text": "Load"}, "margin": {"t": 60}})  # fmt: skip
    spec = figures.figure_spec([{"type": "bar", "x": [1], "y": [2], "uid": "b"}], {"title": {"text": "Load"}})
    for source in (fig, spec):
        sent, title = lift_title(source)
        assert title == "Load" and "title" not in sent["layout"]
        plotly.io.to_json(sent, validate=False)
    assert fig.data[0].uid == "a" and fig.layout.title.text == "Load" and fig.layout.margin.t == 60
    assert spec["data"][0]["uid"] == "b" and spec["layout"]["title"] == {"text": "Load"}
