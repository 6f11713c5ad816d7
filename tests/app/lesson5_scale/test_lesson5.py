"""Lesson 5: every control on the page (AppTest), and the arithmetic and figures behind it.

The page's expert-parallel panel runs a real multi-process job and its fine-grained panel trains
two tiny layers; both are cached per settings for the whole test process, so the page tests share
them. Expected numbers are worked out here by hand or from published facts, not by calling the
functions under test.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from streamlit.testing.v1 import AppTest

from lessons.lesson5_scale import figures as charts
from lessons.lesson5_scale.calc import (
    FORMATS,
    ConfigError,
    dense_masked_moe,
    experts_touched,
    fine_grained,
    kv_elements_per_token,
    memory_per_gpu,
    parse_config,
    specialisation_score,
)
from moe_core.config import MoEConfig
from moe_core.layer import SparseMoE
from moe_core.model_cards import MODEL_CARDS, MORE_MODEL_CARDS
from tests.app.conftest import new_app, texts

PAGE = "pages/5_MoE_at_Scale.py"
SLOW_S = 300  # a first run trains two layers and starts N processes, on a shared 2-core machine


def open_lesson(query: dict[str, str] | None = None) -> AppTest:
    at = new_app(query).run(timeout=SLOW_S)
    at.switch_page(PAGE).run(timeout=SLOW_S)
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r} in {[m.label for m in at.metric]}"
    return found[0]


def caption(at: AppTest, start: str) -> str:
    found = [c.value for c in at.caption if c.value.startswith(start)]
    assert found, f"no caption starting {start!r}"
    return found[0]


# --- the page ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("db_path")
def test_defaults_and_fine_grained_controls() -> None:
    at = open_lesson()
    assert metric(at, "Routed experts, top-k") == "63, top-7"  # DeepSeekMoE 2B's layout
    assert "Traffic of 4 ranks: 512 routed slots" in caption(at, "Traffic of")
    runs = next(df.value for df in at.dataframe if "specialisation" in df.value.columns)
    assert list(runs["layer"]) == ["16 routed, top-2 (the start)", "64 routed, top-8",
                                   "63 routed, top-7, 1 shared"]
    assert runs["specialisation"].between(0, 1).all() and (runs["held-out loss"] > 0).all()

    at.select_slider(key="scale_split").set_value(8).run(timeout=SLOW_S)
    at.slider(key="scale_shared").set_value(3).run(timeout=SLOW_S)
    assert not at.exception
    assert metric(at, "Routed experts, top-k") == "125, top-13"  # 8*16 - 3, 8*2 - 3
    assert metric(at, "Expert parameters") == f"{16 * 3 * 32 * 32:,}"  # unchanged by the split
    combos = math.comb(125, 13)  # 1.531e+17: shown as people read it, never in e-notation
    exponent = len(str(combos)) - 1
    assert metric(at, "Combinations C(N, k)") == f"{combos / 10**exponent:.3g} × 10" + "".join(
        "⁰¹²³⁴⁵⁶⁷⁸⁹"[int(d)] for d in str(exponent))
    assert at.query_params["scale_split"] == "8" and at.query_params["scale_shared"] == "3"

    at.select_slider(key="scale_split").set_value(1).run(timeout=SLOW_S)  # K_s must drop to <= 1
    assert at.slider(key="scale_shared").value == 1
    assert metric(at, "Routed experts, top-k") == "15, top-1"


@pytest.mark.usefixtures("db_path")
def test_traffic_controls_run_a_real_job() -> None:
    at = open_lesson()
    at.select_slider(key="scale_ranks").set_value(2).run(timeout=SLOW_S)
    at.selectbox(key="scale_experts").set_value(16).run(timeout=SLOW_S)
    at.slider(key="scale_topk").set_value(3).run(timeout=SLOW_S)
    at.slider(key="scale_skew").set_value(1.5).run(timeout=SLOW_S)
    at.number_input(key="scale_seed").set_value(7).run(timeout=SLOW_S)
    assert not at.exception and not at.error
    text = caption(at, "Traffic of")
    assert "Traffic of 2 ranks: 768 routed slots (T·k = 256·3)" in text
    assert "Largest difference from single-process fused_moe" in text
    # Skew favours low expert ids, which live on GPU 0: a straggler, so efficiency < 100%.
    assert int(metric(at, "GPU efficiency").rstrip("%")) < 90
    expected = {"scale_ranks": "2", "scale_experts": "16", "scale_topk": "3", "scale_skew": "1.5",
                "scale_seed": "7"}
    assert {key: at.query_params[key] for key in expected} == expected


@pytest.mark.usefixtures("db_path")
def test_memory_controls() -> None:
    at = open_lesson({"scale_model": "mistralai/Mixtral-8x7B-v0.1", "scale_gpus": "1", "scale_seqs": "1",
                      "scale_context": "1024", "scale_format": "bf16"})
    # Mixtral in bf16 does not fit on one 80 GB GPU; in FP8 it does (lesson text, 46.7B parameters).
    per_gpu = float(metric(at, "Per GPU").split()[0])
    assert 93.4 < per_gpu < 96
    assert [m.delta for m in at.metric if m.label == "Per GPU"] == ["over 80 GB"]
    at.segmented_control(key="scale_format").set_value("FP8").run(timeout=SLOW_S)
    assert [m.delta for m in at.metric if m.label == "Per GPU"] == ["fits"]
    at.select_slider(key="scale_gpus").set_value(8).run(timeout=SLOW_S)
    at.slider(key="scale_seqs").set_value(64).run(timeout=SLOW_S)
    at.select_slider(key="scale_context").set_value(32768).run(timeout=SLOW_S)
    at.selectbox(key="scale_model").set_value("deepseek-ai/DeepSeek-V3").run(timeout=SLOW_S)
    assert not at.exception
    assert "touches on average" in caption(at, "One decode step of 512 tokens")
    assert at.query_params["scale_model"] == "deepseek-ai/DeepSeek-V3"


@pytest.mark.usefixtures("db_path")
def test_bad_url_values_are_clamped_with_a_notice() -> None:
    at = open_lesson({"scale_ranks": "3", "scale_skew": "lots", "scale_model": "no/such-model",
                      "scale_format": "FP2"})
    shown = texts(at)
    assert "Link settings adjusted" in shown
    assert at.select_slider(key="scale_ranks").value in (2, 4)
    assert at.slider(key="scale_skew").value == 0.0
    assert at.selectbox(key="scale_model").value == "deepseek-ai/DeepSeek-V3"
    assert at.segmented_control(key="scale_format").value == "FP8"


@pytest.mark.usefixtures("db_path")
def test_models_table_and_pasted_config() -> None:
    at = open_lesson()
    table = next(df.value for df in at.dataframe if "published (B)" in df.value.columns)
    assert len(table) == len(MODEL_CARDS) + len(MORE_MODEL_CARDS)  # every family count_params knows
    mixtral = table[table["model"] == "https://huggingface.co/mistralai/Mixtral-8x7B-v0.1"].iloc[0]
    assert mixtral["total (B)"] == pytest.approx(46.7, abs=0.1) and mixtral["top-k"] == 2

    cases = {"{not json": "This is not valid JSON", "[1, 2]": "this is a list",
             '{"model_type": "mixtral", "hidden_size": 4096}': "missing required field 'num_hidden_layers'"}
    for text, message in cases.items():
        at.text_area(key="scale_config").set_value(text).run(timeout=SLOW_S)
        assert not at.exception
        errors = [str(e.value).replace("\\", "") for e in at.error]
        assert any(message in e for e in errors), (text, errors)

    at.button(key="scale_config_example").click().run(timeout=SLOW_S)
    assert not at.error
    row = next(df.value for df in at.dataframe if df.value.columns[0] == "model" and len(df.value) == 1)
    assert row.iloc[0]["total (B)"] == pytest.approx(6.9, abs=0.05)  # OLMoE: 6.9B total, 1.3B active
    assert row.iloc[0]["active (B)"] == pytest.approx(1.3, abs=0.05)


# --- the arithmetic ------------------------------------------------------------------------------


def test_fine_grained_keeps_the_budget_and_multiplies_combinations() -> None:
    base, split = fine_grained(1, 0), fine_grained(4, 0)
    assert (split.routed, split.top_k, split.combinations) == (64, 8, 4_426_165_368)  # C(64, 8) ≈ 4.4e9
    assert (base.routed, base.top_k, base.combinations) == (16, 2, 120)
    for layout in (fine_grained(4, 1), fine_grained(8, 15), fine_grained(2, 0)):
        assert layout.expert_params == base.expert_params == 16 * 3 * 32 * 32
        assert layout.active_params == base.active_params == 2 * 3 * 32 * 32
    with pytest.raises(ValueError, match=r"shared experts must be in 0\.\.1"):
        fine_grained(1, 2)


def test_dense_masked_path_is_the_sparse_layer() -> None:
    torch.manual_seed(0)
    model = SparseMoE(MoEConfig(hidden_size=8, intermediate_size=4, num_experts=6, top_k=2,
                                num_shared_experts=1))
    x = torch.randn(20, 8)
    dense, routing = dense_masked_moe(model, x)
    out = model(x)
    torch.testing.assert_close(dense, out.hidden_states, rtol=1e-5, atol=1e-6)
    assert torch.equal(routing.topk_ids, out.topk_ids)


def test_specialisation_score_extremes() -> None:
    domains = torch.arange(8).repeat(10)
    own = torch.stack([domains, domains + 8], dim=1)  # every domain has its own two experts
    assert specialisation_score(domains, own, 8, 16)[0] == pytest.approx(1.0)
    shared = torch.tensor([[0, 1]]).repeat(80, 1)  # everybody to the same experts
    assert specialisation_score(domains, shared, 8, 16)[0] == pytest.approx(0.0, abs=1e-12)


def test_kv_cache_and_memory_against_published_sizes() -> None:
    mixtral = MODEL_CARDS["mistralai/Mixtral-8x7B-v0.1"].config
    v3 = MODEL_CARDS["deepseek-ai/DeepSeek-V3"].config
    assert kv_elements_per_token(mixtral) * 2 == 32 * 2 * 8 * 128 * 2  # 128 KiB per token in bf16
    assert kv_elements_per_token(v3) == 61 * (512 + 64)  # MLA caches the latent and the RoPE key
    one = memory_per_gpu(mixtral, 1, "bf16", 1, 1024)
    assert one.replicated + one.experts == pytest.approx(2 * 46.7e9, rel=0.002)
    eight = memory_per_gpu(mixtral, 8, "bf16", 1, 1024)
    assert eight.experts == pytest.approx(one.experts / 8) and eight.replicated == one.replicated
    fp4 = memory_per_gpu(v3, 8, "FP4", 1, 1024)
    assert fp4.experts == pytest.approx(memory_per_gpu(v3, 8, "bf16", 1, 1024).experts * FORMATS["FP4"] / 2)
    with pytest.raises(ValueError, match="must divide"):
        memory_per_gpu(mixtral, 16, "bf16", 1, 1024)


def test_experts_touched_matches_the_lesson_text() -> None:
    assert experts_touched(8, 2, 8) == pytest.approx(7.2, abs=0.05)  # Mixtral, a batch of 8
    assert experts_touched(256, 8, 32) == pytest.approx(163, abs=1)  # DeepSeek-V3, a batch of 32


@pytest.mark.parametrize("text,message", [
    ("", "Paste the contents"), ("   ", "Paste the contents"), ('{"a": 1,}', "not valid JSON"),
    ("42", "but this is a int"), ('{"model_type": "gpt2"}', "unsupported model_type 'gpt2'"),
    ('{"model_type": "mixtral", "hidden_size": "big"}', "'hidden_size' must be an integer"),
])
def test_parse_config_messages(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_config(text)


def test_parse_config_reads_a_real_config() -> None:
    config, pc = parse_config(json.dumps(MODEL_CARDS["deepseek-ai/DeepSeek-V3"].config))
    assert config["n_routed_experts"] == 256
    assert pc.total / 1e9 == pytest.approx(671, rel=0.002)


# --- the figures ---------------------------------------------------------------------------------


def test_traffic_figure_shows_both_matrices() -> None:
    fig = charts.traffic_heatmaps([[3, 1], [0, 4]], [[2.0, 2.0], [2.0, 2.0]], title="t")
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    assert [h.z.tolist() for h in heatmaps] == [[[3, 1], [0, 4]], [[2.0, 2.0], [2.0, 2.0]]]
    assert list(heatmaps[0].x) == ["0", "1"] and list(heatmaps[1].y) == ["0", "1"]
    assert fig.layout.yaxis.domain[0] > fig.layout.yaxis2.domain[1]  # measured above expected


def test_rank_load_bars_mark_the_straggler() -> None:
    fig = charts.rank_load_bars([10, 30, 20], [20, 20, 20])
    colours = list(fig.data[0].marker.color)
    assert colours[1] != colours[0] and colours[0] == colours[2]


def test_memory_and_combination_figures() -> None:
    parts = {"experts": 40.0, "replicated": 5.0, "kv_cache": 2.0, "activations": 1.0}
    fig = charts.memory_bars({1: parts, 2: {**parts, "experts": 20.0}}, current=2, capacity_gb=80)
    assert [t.name for t in fig.data] == [label for _, label, _ in charts.MEMORY_PARTS]
    assert list(fig.data[0].y) == [40.0, 20.0]
    bars = charts.combinations_bars([1, 2], [120, None], current=1)
    assert bars.layout.yaxis.type == "log" and list(bars.data[0].text) == ["120", "n/a"]
    scatter = charts.flops_vs_memory([{"name": "a/b", "weights_gb": 10.0, "gflops": 2.0}], highlight="a/b")
    assert scatter.data[1].mode == "markers+text"
