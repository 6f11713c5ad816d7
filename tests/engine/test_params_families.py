"""count_params for the families issue 16 added: exactly transformers' own parameter count for tiny
configs of each (built on the meta device), and the published totals of real models (test_params.py
holds those, with the model cards' quotes in moe_core.model_cards)."""

from __future__ import annotations

import re
import warnings

import pytest
import torch

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
