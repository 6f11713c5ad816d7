"""count_params for the families issue 16 added: exactly transformers' own parameter count for tiny
configs of each (built on the meta device), and the published totals of real models (test_params.py
holds those, with the model cards' quotes in moe_core.model_cards)."""

from __future__ import annotations

import re
import warnings

import pytest
import torch

from moe_core.model_cards import MORE_MODEL_CARDS
from moe_core.params import count_params

ROUTED = re.compile(r"\.experts\.")  # stacked routed experts in every family below (and Switch's expert_i)


def _hf_model(config: dict):
    import transformers

    fields = {k: v for k, v in config.items() if k != "model_type"}
    mt = config["model_type"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if mt == "llama4_text":
            hf_config = transformers.Llama4TextConfig(**fields)
            cls = transformers.Llama4ForCausalLM
        elif mt == "switch_transformers":
            hf_config = transformers.SwitchTransformersConfig(**fields)
            cls = transformers.SwitchTransformersForConditionalGeneration
        else:
            hf_config = transformers.AutoConfig.for_model(mt, **fields)
            cls = transformers.AutoModelForCausalLM
        with torch.device("meta"):
            return cls.from_config(hf_config) if cls is transformers.AutoModelForCausalLM else cls(hf_config)


def _hf_count(config: dict) -> tuple[int, int]:
    """(total, active): every stored weight; active = total - (E-K)/E of the routed experts."""
    model = _hf_model(config)
    pc = count_params(config)
    total = routed = 0
    seen = set()
    for name, p in model.named_parameters(remove_duplicate=True):
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        routed += p.numel() if ROUTED.search(name) else 0
    total += sum(b.numel() for n, b in model.named_buffers() if n.endswith("e_score_correction_bias"))
    active = total - routed + routed * pc.top_k // pc.num_experts
    if not pc.input_embedding_active:
        active -= model.get_input_embeddings().weight.numel()
    return total, active


BASE = {"vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 4,
        "num_key_value_heads": 2}
SWITCH = {"model_type": "switch_transformers", "vocab_size": 64, "d_model": 32, "d_ff": 24, "d_kv": 8,
          "num_heads": 4, "num_layers": 4, "num_decoder_layers": 3, "num_experts": 4}
TINY = {
    "phimoe with biases": {**BASE, "model_type": "phimoe", "intermediate_size": 24, "num_local_experts": 4,
                           "num_experts_per_tok": 2, "attention_bias": True, "lm_head_bias": True},
    "gpt_oss": {**BASE, "model_type": "gpt_oss", "intermediate_size": 24, "num_local_experts": 4,
                "num_experts_per_tok": 2, "head_dim": 8,
                "layer_types": ["sliding_attention", "full_attention", "sliding_attention"]},
    "llama4 text, every 2nd layer MoE": {**BASE, "model_type": "llama4_text", "intermediate_size": 16,
                                         "intermediate_size_mlp": 40, "num_local_experts": 4,
                                         "num_experts_per_tok": 1, "interleave_moe_layer_step": 2,
                                         "head_dim": 8},
    "glm4_moe with qk norm, one dense layer": {**BASE, "model_type": "glm4_moe", "intermediate_size": 40,
                                               "moe_intermediate_size": 8, "n_routed_experts": 8,
                                               "num_experts_per_tok": 2, "n_shared_experts": 1,
                                               "first_k_dense_replace": 1, "attention_bias": True,
                                               "use_qk_norm": True, "head_dim": 8},
    "granitemoe tied": {**BASE, "model_type": "granitemoe", "intermediate_size": 16, "num_local_experts": 4,
                        "num_experts_per_tok": 2, "tie_word_embeddings": True},
    "jamba": {**BASE, "num_hidden_layers": 4, "model_type": "jamba", "intermediate_size": 24,
              "num_experts": 4, "num_experts_per_tok": 2, "attn_layer_period": 2, "attn_layer_offset": 1,
              "expert_layer_period": 2, "expert_layer_offset": 0, "mamba_d_state": 4, "mamba_dt_rank": 6,
              "use_mamba_kernels": False},
    "switch every 2nd encoder layer, router bias": {**SWITCH, "encoder_sparse_step": 2,
                                                    "decoder_sparse_step": 1, "router_bias": True},
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_new_families_match_transformers_exactly(name):
    config = TINY[name]
    pc = count_params(config)
    assert pc.num_moe_layers > 0 and pc.num_experts > pc.top_k
    assert (pc.total, pc.active) == _hf_count(config)


def test_multimodal_llama4_is_counted_from_its_text_config():
    text = TINY["llama4 text, every 2nd layer MoE"]
    assert count_params({"model_type": "llama4", "text_config": text}) == count_params(text)


# --- real models: the totals their cards publish ---------------------------------------------------

# As each card (or paper) prints them, in billions: repo -> (total, active or None). Sources and the
# exact wording are in moe_core.model_cards.MORE_MODEL_CARDS.
PUBLISHED = {
    "microsoft/Phi-3.5-MoE-instruct": ("41.9", "6.6"),  # card: "16x3.8B parameters with 6.6B active"
    "openai/gpt-oss-120b": ("117", "5.1"),  # card: "117B parameters with 5.1B active parameters"
    "openai/gpt-oss-20b": ("21", "3.6"),  # card: "21B parameters with 3.6B active parameters"
    "meta-llama/Llama-4-Scout-17B-16E": ("109", "17"),  # card: "17B (Activated) 109B (Total)"
    "meta-llama/Llama-4-Maverick-17B-128E": ("400", "17"),  # card: "17B (Activated) 400B (Total)"
    "zai-org/GLM-4.5": ("355", "32"),  # card: "355 billion total parameters with 32 billion active"
    "ibm-granite/granite-3.0-1b-a400m-base": ("1.3", "0.4"),  # card table: 400M active, 1.3B total
    "ai21labs/Jamba-v0.1": ("52", "12"),  # card: "12B active parameters and a total of 52B"
    "google/switch-c-2048": ("1571", None),  # Fedus et al. 2021, Table 9: Switch-C 1571B
}


def _matches_card(count: int, printed: str) -> bool:
    """Within 2%, or inside the card's own rounding of its last printed digit."""
    value, published = count / 1e9, float(printed)
    unit = 10.0 ** -len(printed.split(".")[1]) if "." in printed else 1.0
    return abs(value - published) <= 0.02 * published or published - unit / 2 <= value < published + unit


def test_every_new_card_is_checked():
    assert set(MORE_MODEL_CARDS) == set(PUBLISHED)


@pytest.mark.parametrize("repo", sorted(PUBLISHED))
def test_new_family_cards_match_published_totals(repo):
    card = MORE_MODEL_CARDS[repo]
    pc = count_params(card.config)
    total, active = PUBLISHED[repo]
    assert (card.total_b, card.active_b) == (float(total), None if active is None else float(active))
    assert _matches_card(pc.total, total), f"total {pc.total / 1e9:.3f}B vs card {total}B"
    if active is not None:
        assert _matches_card(pc.active, active), f"active {pc.active / 1e9:.3f}B vs card {active}B"


def test_gpt_oss_matches_openai_model_card_table_to_the_printed_digit():
    # OpenAI's gpt-oss model card (arXiv 2508.10925), Table 1: total 116.83B / 20.91B, active 5.13B / 3.61B.
    for repo, total, active in (("openai/gpt-oss-120b", 116.83, 5.13), ("openai/gpt-oss-20b", 20.91, 3.61)):
        pc = count_params(MORE_MODEL_CARDS[repo].config)
        assert round(pc.total / 1e9, 2) == total and round(pc.active / 1e9, 2) == active
