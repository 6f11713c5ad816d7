"""Real MoE models: their Hugging Face ``config.json`` fields and the sizes their model cards publish.

Why: Lessons 1 and 5 show real models next to the tiny one, and the tests hold ``count_params`` to the
published figures. Each ``config`` below is the model's ``config.json`` (JSON ``true/false/null``
written as Python ``True/False/None``); ``config_url`` is the file on the Hub and ``source`` says
which public copy the values were read from where the Hub page itself was not at hand. Fields a copy
could not confirm are left out rather than guessed; none of them changes a parameter count.
Treat every dict here as read-only: ``MODEL_CARDS`` is shared by every caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from moe_core.params import count_params

_DS_MAP_V2 = {"AutoConfig": "configuration_deepseek.DeepseekV2Config",
              "AutoModel": "modeling_deepseek.DeepseekV2Model",
              "AutoModelForCausalLM": "modeling_deepseek.DeepseekV2ForCausalLM"}
_DS_MAP_V3 = {"AutoConfig": "configuration_deepseek.DeepseekV3Config",
              "AutoModel": "modeling_deepseek.DeepseekV3Model",
              "AutoModelForCausalLM": "modeling_deepseek.DeepseekV3ForCausalLM"}


@dataclass(frozen=True)
class ModelCard:
    """One real model: its config and what its card says about its size (billions of parameters)."""

    repo: str
    config: dict[str, Any]
    config_url: str
    card_url: str
    total_b: float  # published total parameters
    active_b: float | None  # published activated parameters per token (None: not published)
    card_quote: str  # the sentence the figures come from, verbatim
    source: str = ""  # where the config values were read, when not the Hub page itself
    total_with_mtp_b: float | None = None  # DeepSeek-V3: main model + MTP module
    notes: tuple[str, ...] = field(default_factory=tuple)


_CARDS: list[ModelCard] = [
    ModelCard(
        "mistralai/Mixtral-8x7B-v0.1",
        {"architectures": ["MixtralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1,
         "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
         "intermediate_size": 14336,
         "max_position_embeddings": 32768, "model_type": "mixtral", "num_attention_heads": 32,
         "num_experts_per_tok": 2, "num_hidden_layers": 32, "num_key_value_heads": 8, "num_local_experts": 8,
         "output_router_logits": False, "rms_norm_eps": 1e-05, "rope_theta": 1000000.0,
         "router_aux_loss_coef": 0.02, "sliding_window": None, "tie_word_embeddings": False,
         "torch_dtype": "bfloat16", "transformers_version": "4.36.0.dev0", "use_cache": True,
         "vocab_size": 32000},
        "https://huggingface.co/mistralai/Mixtral-8x7B-v0.1/blob/main/config.json",
        "https://mistral.ai/news/mixtral-of-experts/", 46.7, 12.9,
        "Mixtral has 46.7B total parameters but only uses 12.9B parameters per token.",
        source="identical to the Hub page of mistralai/Mixtral-8x7B-Instruct-v0.1 (commit eba9230) and to "
               "public copies citing the v0.1 URL",
    ),
    ModelCard(
        "mistralai/Mixtral-8x22B-v0.1",
        {"architectures": ["MixtralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1,
         "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 6144, "initializer_range": 0.02,
         "intermediate_size": 16384,
         "max_position_embeddings": 65536, "model_type": "mixtral", "num_attention_heads": 48,
         "num_experts_per_tok": 2, "num_hidden_layers": 56, "num_key_value_heads": 8, "num_local_experts": 8,
         "output_router_logits": False, "rms_norm_eps": 1e-05, "rope_theta": 1000000,
         "router_aux_loss_coef": 0.001, "router_jitter_noise": 0.0, "sliding_window": None,
         "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.40.0.dev0",
         "use_cache": True, "vocab_size": 32000},
        "https://huggingface.co/mistralai/Mixtral-8x22B-v0.1/blob/main/config.json",
        "https://mistral.ai/news/mixtral-8x22b/", 141.0, 39.0,
        "a sparse Mixture-of-Experts (SMoE) model that uses only 39B active parameters out of 141B",
        source="not read from the Hub page: agreed by four derived configs of "
               "mistral-community/Mixtral-8x22B-v0.1 (commit 42a1ba7) and a test copy in scaleapi/llm-engine",
    ),
    ModelCard(
        "Qwen/Qwen1.5-MoE-A2.7B",
        {"architectures": ["Qwen2MoeForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
         "decoder_sparse_step": 1, "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 2048,
         "initializer_range": 0.02, "intermediate_size": 5632, "max_position_embeddings": 8192,
         "max_window_layers": 21, "model_type": "qwen2_moe", "moe_intermediate_size": 1408,
         "norm_topk_prob": False, "num_attention_heads": 16, "num_experts": 60, "num_experts_per_tok": 4,
         "num_hidden_layers": 24, "num_key_value_heads": 16, "output_router_logits": False,
         "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001,
         "shared_expert_intermediate_size": 5632, "sliding_window": 32768, "tie_word_embeddings": False,
         "torch_dtype": "bfloat16", "transformers_version": "4.40.0.dev0", "use_sliding_window": False,
         "vocab_size": 151936},
        "https://huggingface.co/Qwen/Qwen1.5-MoE-A2.7B/blob/main/config.json",
        "https://huggingface.co/Qwen/Qwen1.5-MoE-A2.7B", 14.3, 2.7,
        "It has 14.3B parameters in total and 2.7B activated parameters during runtime",
        source="quantised and fine-tuned copies of Qwen/Qwen1.5-MoE-A2.7B on the Hub (use_cache left out: "
               "copies disagree)",
    ),
    ModelCard(
        "Qwen/Qwen3-30B-A3B",
        {"architectures": ["Qwen3MoeForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
         "bos_token_id": 151643, "decoder_sparse_step": 1, "eos_token_id": 151645, "head_dim": 128,
         "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 6144,
         "max_position_embeddings": 40960, "max_window_layers": 48, "mlp_only_layers": [],
         "model_type": "qwen3_moe", "moe_intermediate_size": 768, "norm_topk_prob": True,
         "num_attention_heads": 32, "num_experts": 128, "num_experts_per_tok": 8, "num_hidden_layers": 48,
         "num_key_value_heads": 4, "output_router_logits": False, "rms_norm_eps": 1e-06, "rope_scaling": None,
         "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001, "sliding_window": None,
         "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
         "use_cache": True, "use_sliding_window": False, "vocab_size": 151936},
        "https://huggingface.co/Qwen/Qwen3-30B-A3B/blob/main/config.json",
        "https://huggingface.co/Qwen/Qwen3-30B-A3B", 30.5, 3.3,
        "Number of Parameters: 30.5B in total and 3.3B activated",
        source="alibaba/InferSim hf_configs/qwen3-30B-A3B_config.json",
    ),
    ModelCard(
        "Qwen/Qwen3-235B-A22B",
        {"architectures": ["Qwen3MoeForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
         "bos_token_id": 151643, "decoder_sparse_step": 1, "eos_token_id": 151645, "head_dim": 128,
         "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 12288,
         "max_position_embeddings": 40960, "max_window_layers": 94, "mlp_only_layers": [],
         "model_type": "qwen3_moe", "moe_intermediate_size": 1536, "norm_topk_prob": True,
         "num_attention_heads": 64, "num_experts": 128, "num_experts_per_tok": 8, "num_hidden_layers": 94,
         "num_key_value_heads": 4, "output_router_logits": False, "rms_norm_eps": 1e-06, "rope_scaling": None,
         "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001, "sliding_window": None,
         "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
         "use_cache": True, "use_sliding_window": False, "vocab_size": 151936},
        "https://huggingface.co/Qwen/Qwen3-235B-A22B/blob/main/config.json",
        "https://huggingface.co/Qwen/Qwen3-235B-A22B", 235.0, 22.0,
        "Number of Parameters: 235B in total and 22B activated",
        source="two public copies labelled Qwen/Qwen3-235B-A22B (the -2507 release differs only in "
               "max_position_embeddings and rope_theta)",
    ),
    ModelCard(
        "allenai/OLMoE-1B-7B-0924",
        {"architectures": ["OlmoeForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
         "clip_qkv": None, "eos_token_id": 50279, "hidden_act": "silu", "hidden_size": 2048,
         "initializer_range": 0.02, "intermediate_size": 1024, "max_position_embeddings": 4096,
         "model_type": "olmoe", "norm_topk_prob": False, "num_attention_heads": 16, "num_experts": 64,
         "num_experts_per_tok": 8, "num_hidden_layers": 16, "num_key_value_heads": 16,
         "output_router_logits": False, "pad_token_id": 1, "rope_scaling": None, "rope_theta": 10000.0,
         "router_aux_loss_coef": 0.01, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
         "transformers_version": "4.43.0.dev0", "use_cache": True, "vocab_size": 50304},
        "https://huggingface.co/allenai/OLMoE-1B-7B-0924/blob/c1b31da0c8e885c688902634d444982ca419aa33/config.json",
        "https://arxiv.org/abs/2409.02060", 6.9, 1.3,
        "OLMoE-1B-7B has 7 billion (B) parameters but uses only 1B per input token.",
        notes=("The quote is the paper's abstract, which rounds. The 6.9B total and 1.3B active figures are "
               "from the paper's own comparison of model sizes (paraphrased here, not quoted).",),
    ),
    ModelCard(
        "databricks/dbrx-base",
        {"architectures": ["DbrxForCausalLM"],
         "attn_config": {"clip_qkv": 8, "kv_n_heads": 8, "model_type": "", "rope_theta": 500000},
         "auto_map": {"AutoConfig": "configuration_dbrx.DbrxConfig",
                      "AutoModelForCausalLM": "modeling_dbrx.DbrxForCausalLM"},
         "d_model": 6144, "emb_pdrop": 0.0,
         "ffn_config": {"ffn_hidden_size": 10752, "model_type": "", "moe_jitter_eps": 0.01,
                        "moe_loss_weight": 0.05, "moe_num_experts": 16, "moe_top_k": 4},
         "initializer_range": 0.02, "max_seq_len": 32768, "model_type": "dbrx", "n_heads": 48, "n_layers": 40,
         "output_router_logits": False, "resid_pdrop": 0.0, "router_aux_loss_coef": 0.05,
         "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.38.2",
         "use_cache": True, "vocab_size": 100352},
        "https://huggingface.co/databricks/dbrx-base/blob/main/config.json",
        "https://huggingface.co/databricks/dbrx-base", 132.0, 36.0,
        "132B total parameters of which 36B parameters are active on any input",
        source="LnL-AI/dbrx-base-converted-v2 on the Hub (dbrx-base is gated); dbrx-instruct differs only in "
               "moe_jitter_eps",
    ),
    ModelCard(
        "deepseek-ai/DeepSeek-V2-Lite",
        {"architectures": ["DeepseekV2ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
         "auto_map": _DS_MAP_V2, "aux_loss_alpha": 0.001, "bos_token_id": 100000, "eos_token_id": 100001,
         "ep_size": 1, "first_k_dense_replace": 1, "hidden_act": "silu", "hidden_size": 2048,
         "initializer_range": 0.02, "intermediate_size": 10944, "kv_lora_rank": 512,
         "max_position_embeddings": 163840, "model_type": "deepseek_v2", "moe_intermediate_size": 1408,
         "moe_layer_freq": 1, "n_group": 1, "n_routed_experts": 64, "n_shared_experts": 2,
         "norm_topk_prob": False, "num_attention_heads": 16, "num_experts_per_tok": 6,
         "num_hidden_layers": 27,
         "num_key_value_heads": 16, "pretraining_tp": 1, "q_lora_rank": None, "qk_nope_head_dim": 128,
         "qk_rope_head_dim": 64, "rms_norm_eps": 1e-06,
         "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707,
                          "mscale_all_dim": 0.707, "original_max_position_embeddings": 4096, "type": "yarn"},
         "rope_theta": 10000, "routed_scaling_factor": 1.0, "scoring_func": "softmax", "seq_aux": True,
         "tie_word_embeddings": False, "topk_group": 1, "topk_method": "greedy", "torch_dtype": "bfloat16",
         "use_cache": True, "v_head_dim": 128, "vocab_size": 102400},
        "https://huggingface.co/deepseek-ai/DeepSeek-V2-Lite/blob/main/config.json",
        "https://huggingface.co/deepseek-ai/DeepSeek-V2-Lite", 15.7, 2.4,
        "DeepSeek-V2-Lite | #Total Params 16B | #Activated Params 2.4B (the Hub's safetensors count: 15.7B)",
        source="ModelCloud/DeepSeek-V2-Lite-gptq-4bit config (built from the original) and "
               "deepseek-ai/DeepSeek-Coder-V2-Lite-Base (same architecture); transformers_version left out",
    ),
    ModelCard(
        "deepseek-ai/DeepSeek-V2",
        {"architectures": ["DeepseekV2ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
         "auto_map": _DS_MAP_V2, "aux_loss_alpha": 0.001, "bos_token_id": 100000, "eos_token_id": 100001,
         "first_k_dense_replace": 1, "hidden_act": "silu", "hidden_size": 5120, "initializer_range": 0.02,
         "intermediate_size": 12288, "kv_lora_rank": 512, "max_position_embeddings": 163840,
         "model_type": "deepseek_v2", "moe_intermediate_size": 1536, "moe_layer_freq": 1, "n_group": 8,
         "n_routed_experts": 160, "n_shared_experts": 2, "norm_topk_prob": False, "num_attention_heads": 128,
         "num_experts_per_tok": 6, "num_hidden_layers": 60, "num_key_value_heads": 128, "pretraining_tp": 1,
         "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "rms_norm_eps": 1e-06,
         "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707,
                          "mscale_all_dim": 0.707, "original_max_position_embeddings": 4096, "type": "yarn"},
         "rope_theta": 10000, "routed_scaling_factor": 16.0, "scoring_func": "softmax", "seq_aux": True,
         "tie_word_embeddings": False, "topk_group": 3, "topk_method": "group_limited_greedy",
         "torch_dtype": "bfloat16", "transformers_version": "4.39.3", "use_cache": True, "v_head_dim": 128,
         "vocab_size": 102400},
        "https://huggingface.co/deepseek-ai/DeepSeek-V2/blob/main/config.json",
        "https://huggingface.co/deepseek-ai/DeepSeek-V2", 236.0, 21.0,
        "comprising 236B total parameters, of which 21B are activated for each token",
        source="NVIDIA-NeMo Megatron-Bridge test fixture of the DeepSeek-V2 config; sizes agree with "
               "deepseek-ai/DeepSeek-V3 inference/configs/config_236B.json",
    ),
    ModelCard(
        "deepseek-ai/DeepSeek-V3",
        {"architectures": ["DeepseekV3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
         "auto_map": _DS_MAP_V3, "bos_token_id": 0, "eos_token_id": 1, "ep_size": 1,
         "first_k_dense_replace": 3,
         "hidden_act": "silu", "hidden_size": 7168, "initializer_range": 0.02, "intermediate_size": 18432,
         "kv_lora_rank": 512, "max_position_embeddings": 163840, "model_type": "deepseek_v3",
         "moe_intermediate_size": 2048, "moe_layer_freq": 1, "n_group": 8, "n_routed_experts": 256,
         "n_shared_experts": 1, "norm_topk_prob": True, "num_attention_heads": 128, "num_experts_per_tok": 8,
         "num_hidden_layers": 61, "num_key_value_heads": 128, "num_nextn_predict_layers": 1,
         "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
         "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                 "weight_block_size": [128, 128]},
         "rms_norm_eps": 1e-06,
         "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0,
                          "original_max_position_embeddings": 4096, "type": "yarn"},
         "rope_theta": 10000, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid",
         "tie_word_embeddings": False, "topk_group": 4, "topk_method": "noaux_tc", "torch_dtype": "bfloat16",
         "transformers_version": "4.33.1", "use_cache": True, "v_head_dim": 128, "vocab_size": 129280},
        "https://huggingface.co/deepseek-ai/DeepSeek-V3/blob/main/config.json",
        "https://huggingface.co/deepseek-ai/DeepSeek-V3", 671.0, 37.0,
        "671B total parameters with 37B activated for each token ... 685B, which includes 671B of the Main "
        "Model weights and 14B of the Multi-Token Prediction (MTP) Module weights",
        source="a public dump of deepseek-ai/DeepSeek-V3 config.json; same values in "
               "NVIDIA-NeMo Megatron-Bridge tests",
        total_with_mtp_b=685.0,
        notes=("README_WEIGHTS.md (deepseek-ai/DeepSeek-V3 @ 9b4e9788), main model: 'Activation parameters: "
               "36.7B (including 0.9B for Embedding and 0.9B for the output Head)'. count_params's active "
               "(36.6B) leaves the input embedding out, as the course has counted DeepSeek so far; tensor by "
               "tensor with it a token touches 37.6B, 0.9B above the README's figure and inside the card's "
               "rounded 37B. The README does not say which 0.9B it leaves out.",),
    ),
]

MODEL_CARDS: dict[str, ModelCard] = {card.repo: card for card in _CARDS}


def comparison_rows(cards: Iterable[ModelCard] | None = None) -> list[dict[str, Any]]:
    """One row per card (default: MODEL_CARDS): computed and published sizes side by side (Lesson 5's
    real-models table)."""
    rows = []
    for card in _CARDS if cards is None else cards:
        pc = count_params(card.config)
        rows.append({
            "model": card.repo, "experts": pc.num_experts, "top_k": pc.top_k,
            "shared": pc.num_shared_experts, "total_b": pc.total / 1e9, "active_b": pc.active / 1e9,
            "published_total_b": card.total_b, "published_active_b": card.active_b,
            "flops_per_token": pc.flops_per_token, "card_url": card.card_url,
        })
    return rows


def mixtral_like(num_experts: int, top_k: int, d_model: int, d_ff: int, layers: int, shared_experts: int = 0,
                 *, vocab_size: int = 32000, num_heads: int | None = None, num_kv_heads: int | None = None,
                 tie_word_embeddings: bool = False) -> dict[str, Any]:
    """A synthetic config for the Lesson 1 calculator: E experts of width ``d_ff``, top-``k`` routing.

    With no shared experts it is a Mixtral config; with ``shared_experts`` always-on experts of the same
    width it is a Qwen2-MoE config without qkv bias (one shared SwiGLU of width ``shared_experts*d_ff``
    plus its sigmoid gate), because Mixtral has no shared experts. ``num_heads`` defaults to
    ``d_model // 128`` (at least 1); it must divide ``d_model``.
    """
    heads = num_heads or max(1, d_model // 128)
    if d_model % heads:
        raise ValueError(f"num_heads ({heads}) must divide d_model ({d_model})")
    base = {"hidden_size": d_model, "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": num_kv_heads or heads, "vocab_size": vocab_size,
            "num_experts_per_tok": top_k, "tie_word_embeddings": tie_word_embeddings}
    if shared_experts == 0:
        cfg = {"model_type": "mixtral", "num_local_experts": num_experts, "intermediate_size": d_ff, **base}
    else:
        cfg = {"model_type": "qwen2_moe", "num_experts": num_experts, "moe_intermediate_size": d_ff,
               "shared_expert_intermediate_size": shared_experts * d_ff, "intermediate_size": d_ff,
               "qkv_bias": False, **base}
    count_params(cfg)  # validate now, so a bad slider value fails here with a clear message
    return cfg


# --- families added with moe_core.hf (issue 16) ------------------------------------------------------
# Kept apart from MODEL_CARDS because Lesson 1's calculator has sliders only for the families above;
# merge them once its KNOB_FIELDS covers these model types. Each config lists the fields count_params
# reads (plus model_type); where a card prints a table, card_quote gives its cells.

_MORE: list[ModelCard] = [
    ModelCard(
        "microsoft/Phi-3.5-MoE-instruct",
        {"architectures": ["PhimoeForCausalLM"], "model_type": "phimoe", "vocab_size": 32064,
         "hidden_size": 4096,
         "intermediate_size": 6400, "num_hidden_layers": 32, "num_attention_heads": 32,
         "num_key_value_heads": 8,
         "num_local_experts": 16, "num_experts_per_tok": 2, "attention_bias": True, "lm_head_bias": True,
         "tie_word_embeddings": False},
        "https://huggingface.co/microsoft/Phi-3.5-MoE-instruct/blob/main/config.json",
        "https://huggingface.co/microsoft/Phi-3.5-MoE-instruct", 41.9, 6.6,
        "Phi-3.5-MoE has 16x3.8B parameters with 6.6B active parameters when using 2 experts.",
        source="mlx-community/Phi-3.5-MoE-instruct-4bit config (sizes); attention_bias, lm_head_bias as in "
               "public copies (together 0.3M parameters); total: the Hub's safetensors count, 41.9B",
    ),
    ModelCard(
        "openai/gpt-oss-120b",
        {"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "vocab_size": 201088,
         "hidden_size": 2880,
         "intermediate_size": 2880, "num_hidden_layers": 36, "num_attention_heads": 64,
         "num_key_value_heads": 8,
         "head_dim": 64, "num_local_experts": 128, "num_experts_per_tok": 4, "attention_bias": True,
         "swiglu_limit": 7.0, "tie_word_embeddings": False},
        "https://huggingface.co/openai/gpt-oss-120b/blob/main/config.json",
        "https://huggingface.co/openai/gpt-oss-120b", 117.0, 5.1,
        "117B parameters with 5.1B active parameters",
        source="sizes as in the model card (arXiv 2508.10925): 36 layers, 128 experts, 64 query, 8 KV heads, "
               "201,088-token vocabulary; hidden size from the 20b config below",
        notes=("OpenAI's model card table: 116.83B total, 5.13B active (without the input embedding); "
               "the router has a bias, and so do the experts and q/k/v/o.",),
    ),
    ModelCard(
        "openai/gpt-oss-20b",
        {"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "vocab_size": 201088,
         "hidden_size": 2880,
         "intermediate_size": 2880, "num_hidden_layers": 24, "num_attention_heads": 64,
         "num_key_value_heads": 8,
         "head_dim": 64, "num_local_experts": 32, "num_experts_per_tok": 4, "attention_bias": True,
         "swiglu_limit": 7.0, "tie_word_embeddings": False},
        "https://huggingface.co/openai/gpt-oss-20b/blob/main/config.json",
        "https://huggingface.co/openai/gpt-oss-20b", 21.0, 3.6,
        "21B parameters with 3.6B active parameters",
        source="a public test fixture quoting gpt-oss-20b's config shape",
        notes=("OpenAI's model card table: 20.91B total, 3.61B active (without the input embedding).",),
    ),
    ModelCard(
        "meta-llama/Llama-4-Scout-17B-16E",
        {"architectures": ["Llama4ForConditionalGeneration"], "model_type": "llama4", "text_config": {
            "model_type": "llama4_text", "hidden_size": 5120, "intermediate_size": 8192,
            "intermediate_size_mlp": 16384, "num_hidden_layers": 48, "num_attention_heads": 40,
            "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 202048, "num_local_experts": 16,
            "num_experts_per_tok": 1, "interleave_moe_layer_step": 1, "attention_bias": False,
            "tie_word_embeddings": False}},
        "https://huggingface.co/meta-llama/Llama-4-Scout-17B-16E/blob/main/config.json",
        "https://huggingface.co/meta-llama/Llama-4-Scout-17B-16E", 109.0, 17.0,
        "17B (Activated) 109B (Total)",
        source="public copies of the Scout config (text_config)",
        notes=("count_params counts the language model; the checkpoint also holds a vision encoder.",),
    ),
    ModelCard(
        "meta-llama/Llama-4-Maverick-17B-128E",
        {"architectures": ["Llama4ForConditionalGeneration"], "model_type": "llama4", "text_config": {
            "model_type": "llama4_text", "hidden_size": 5120, "intermediate_size": 8192,
            "intermediate_size_mlp": 16384, "num_hidden_layers": 48, "num_attention_heads": 40,
            "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 202048, "num_local_experts": 128,
            "num_experts_per_tok": 1, "interleave_moe_layer_step": 2, "attention_bias": False}},
        "https://huggingface.co/meta-llama/Llama-4-Maverick-17B-128E/blob/main/config.json",
        "https://huggingface.co/meta-llama/Llama-4-Maverick-17B-128E", 400.0, 17.0,
        "17B (Activated) 400B (Total)",
        source="vLLM's two-layer test copy of the Maverick config, with its 48 layers restored",
    ),
    ModelCard(
        "zai-org/GLM-4.5",
        {"architectures": ["Glm4MoeForCausalLM"], "model_type": "glm4_moe", "attention_bias": True,
         "first_k_dense_replace": 3, "head_dim": 128, "hidden_size": 5120, "intermediate_size": 12288,
         "moe_intermediate_size": 1536, "n_group": 1, "n_routed_experts": 160, "n_shared_experts": 1,
         "norm_topk_prob": True, "num_attention_heads": 96, "num_experts_per_tok": 8, "num_hidden_layers": 92,
         "num_key_value_heads": 8, "num_nextn_predict_layers": 1, "routed_scaling_factor": 2.5,
         "topk_group": 1, "use_qk_norm": True, "vocab_size": 151552, "tie_word_embeddings": False},
        "https://huggingface.co/zai-org/GLM-4.5/blob/main/config.json",
        "https://huggingface.co/zai-org/GLM-4.5", 355.0, 32.0,
        "GLM-4.5 has 355 billion total parameters with 32 billion active parameters",
        source="fields transcribed from nvidia/GLM-4.7-NVFP4 (commit 47fa7dc8), the same 355B-A32B "
               "architecture; GLM-4.5's own file was not at hand",
        notes=("count_params: 352.8B without and 358.3B with the MTP layer; 32.9B active without the input "
               "embedding (32.1B without embedding and head).",),
    ),
    ModelCard(
        "ibm-granite/granite-3.0-1b-a400m-base",
        {"architectures": ["GraniteMoeForCausalLM"], "model_type": "granitemoe", "vocab_size": 49155,
         "hidden_size": 1024, "intermediate_size": 512, "num_hidden_layers": 24, "num_attention_heads": 16,
         "num_key_value_heads": 8, "num_local_experts": 32, "num_experts_per_tok": 8,
         "tie_word_embeddings": True},
        "https://huggingface.co/ibm-granite/granite-3.0-1b-a400m-base/blob/main/config.json",
        "https://huggingface.co/ibm-granite/granite-3.0-1b-a400m-base", 1.3, 0.4,
        "# Active Parameters 400M | # Total Parameters 1.3B",
        source="public test fixtures quoting the granite-3.0-1b-a400m config",
    ),
    ModelCard(
        "ai21labs/Jamba-v0.1",
        {"architectures": ["JambaForCausalLM"], "model_type": "jamba", "vocab_size": 65536,
         "hidden_size": 4096,
         "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
         "num_key_value_heads": 8,
         "num_experts": 16, "num_experts_per_tok": 2, "expert_layer_period": 2, "expert_layer_offset": 1,
         "attn_layer_period": 8, "attn_layer_offset": 4, "mamba_d_state": 16, "mamba_d_conv": 4,
         "mamba_expand": 2, "mamba_dt_rank": 256, "tie_word_embeddings": False},
        "https://huggingface.co/ai21labs/Jamba-v0.1/blob/main/config.json",
        "https://huggingface.co/ai21labs/Jamba-v0.1", 52.0, 12.0,
        "with 12B active parameters and a total of 52B parameters across all experts",
        source="transformers' JambaConfig defaults, documented there as Jamba-v0.1's configuration",
    ),
    ModelCard(
        "google/switch-c-2048",
        {"architectures": ["SwitchTransformersForConditionalGeneration"], "model_type": "switch_transformers",
         "vocab_size": 32128, "d_model": 2080, "d_ff": 6144, "d_kv": 64, "num_heads": 30, "num_layers": 15,
         "num_decoder_layers": 15, "num_experts": 2048, "encoder_sparse_step": 1, "decoder_sparse_step": 1},
        "https://huggingface.co/google/switch-c-2048/blob/main/config.json",
        "https://arxiv.org/abs/2101.03961", 1571.0, None,
        "Switch-C | 1571B (Table 9, parameters)",
        source="architecture from flaxformer's t5x/configs/moe/models/switch_c.gin (15+15 layers, 30 heads "
               "of 64, d_model 2080, MLP 6144, 2048 experts, every MLP an MoE)",
        notes=("The paper gives no activated-parameter figure; count_params gives 1.7B per token.",),
    ),
]

MORE_MODEL_CARDS: dict[str, ModelCard] = {card.repo: card for card in _MORE}
