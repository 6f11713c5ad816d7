"""Tests for moe_core.params (contract 3) and moe_core.model_cards.

Three independent references: the sizes the model cards publish (restated here as the cards print
them), hand-written formulas for a tiny Mixtral plus the same model built from plain ``nn.Linear``
modules, and Hugging Face ``transformers`` building each architecture on the meta device.
"""

import re
import warnings

import pytest
import torch
from torch import nn

from moe_core.model_cards import MODEL_CARDS, comparison_rows, mixtral_like
from moe_core.params import ParamCount, count_params, dense_equivalent

pytestmark = pytest.mark.engine

# The figures as each card prints them (billions): "repo": (total, active).
PUBLISHED = {
    "mistralai/Mixtral-8x7B-v0.1": ("46.7", "12.9"),
    "mistralai/Mixtral-8x22B-v0.1": ("141", "39"),
    "Qwen/Qwen1.5-MoE-A2.7B": ("14.3", "2.7"),
    "Qwen/Qwen3-30B-A3B": ("30.5", "3.3"),
    "Qwen/Qwen3-235B-A22B": ("235", "22"),
    "allenai/OLMoE-1B-7B-0924": ("6.9", "1.3"),
    "databricks/dbrx-base": ("132", "36"),
    "deepseek-ai/DeepSeek-V2-Lite": ("15.7", "2.4"),
    "deepseek-ai/DeepSeek-V2": ("236", "21"),
    "deepseek-ai/DeepSeek-V3": ("671", "37"),
}


def _matches_card(count: int, printed: str) -> bool:
    """Within 2%, or inside the card's own rounding: cards round or truncate to their last digit."""
    value, published = count / 1e9, float(printed)
    unit = 10.0 ** -len(printed.split(".")[1]) if "." in printed else 1.0
    return abs(value - published) <= 0.02 * published or published - unit / 2 <= value < published + unit


def test_every_card_is_listed_with_its_published_figures():
    assert set(MODEL_CARDS) == set(PUBLISHED)
    for repo, (total, active) in PUBLISHED.items():
        card = MODEL_CARDS[repo]
        assert (card.total_b, card.active_b) == (float(total), float(active))
        assert card.config_url.startswith(f"https://huggingface.co/{repo}/")
        assert card.card_url.startswith("https://")


@pytest.mark.parametrize("repo", sorted(PUBLISHED))
def test_card_models_match_published_total_and_active(repo):
    pc = count_params(MODEL_CARDS[repo].config)
    total, active = PUBLISHED[repo]
    assert _matches_card(pc.total, total), f"total {pc.total / 1e9:.3f}B vs card {total}B"
    assert _matches_card(pc.active, active), f"active {pc.active / 1e9:.3f}B vs card {active}B"


def test_deepseek_v3_mtp_matches_the_685b_checkpoint_figure():
    pc = count_params(MODEL_CARDS["deepseek-ai/DeepSeek-V3"].config)
    assert abs(pc.total / 1e9 - 671) < 0.5  # the card's main model
    assert abs(pc.total_with_mtp / 1e9 - 685) <= 0.02 * 685  # "671B main + 14B MTP = 685B"
    # README_WEIGHTS: 11.5B unique MTP weights besides its own 0.9B embedding and 0.9B head copies.
    emb = 129280 * 7168
    assert abs((pc.mtp - 2 * emb) / 1e9 - 11.5) < 0.2
    # README_WEIGHTS: "36.7B (including 0.9B for Embedding and 0.9B for the output Head)"; the course's
    # active leaves the input embedding out (36.6B), the nearer count (see the card's note).
    assert abs(pc.active / 1e9 - 36.6) < 0.05
    assert pc.input_embedding_active is False
    assert pc.active_with_input_embedding - pc.active == emb


# --- tiny Mixtral: hand formula and plain torch modules ---------------------------------------

V, D, L, H, KV, F, E, K = 100, 16, 2, 4, 2, 32, 4, 2
TINY = {"model_type": "mixtral", "vocab_size": V, "hidden_size": D, "num_hidden_layers": L,
        "num_attention_heads": H, "num_key_value_heads": KV, "intermediate_size": F,
        "num_local_experts": E, "num_experts_per_tok": K, "tie_word_embeddings": False}


class _TinyMixtral(nn.Module):
    """The same tiny Mixtral from plain modules: names follow Hugging Face's Mixtral."""

    def __init__(self) -> None:
        super().__init__()
        hd = D // H
        self.embed_tokens = nn.Embedding(V, D)
        self.layers = nn.ModuleList()
        for _ in range(L):
            layer = nn.Module()
            layer.q_proj, layer.k_proj = nn.Linear(D, H * hd, bias=False), nn.Linear(D, KV * hd, bias=False)
            layer.v_proj, layer.o_proj = nn.Linear(D, KV * hd, bias=False), nn.Linear(H * hd, D, bias=False)
            layer.input_layernorm, layer.post_attention_layernorm = nn.RMSNorm(D), nn.RMSNorm(D)
            layer.gate = nn.Linear(D, E, bias=False)
            layer.experts = nn.ModuleList(
                nn.ModuleDict({"w1": nn.Linear(D, F, bias=False), "w3": nn.Linear(D, F, bias=False),
                               "w2": nn.Linear(F, D, bias=False)}) for _ in range(E))
            self.layers.append(layer)
        self.norm = nn.RMSNorm(D)
        self.lm_head = nn.Linear(D, V, bias=False)


def test_tiny_mixtral_matches_a_hand_count():
    hd = D // H
    attn = D * H * hd + 2 * D * KV * hd + H * hd * D  # q, k, v, o
    expert = 3 * D * F  # w1, w3 (D->F) and w2 (F->D)
    per_layer = attn + 2 * D + E * D + E * expert  # + 2 norms + router
    total = L * per_layer + 2 * V * D + D  # + embedding, lm_head, final norm
    assert total == 17232  # worked out on paper: 2 * 7008 + 3200 + 16
    pc = count_params(TINY)
    assert pc.total == total
    assert pc.active == total - L * (E - K) * expert == 11088
    assert pc.routed_experts == L * E * expert and pc.active_routed_experts == L * K * expert
    assert pc.attention == L * attn and pc.router == L * E * D and pc.norms == L * 2 * D + D
    assert pc.embedding == 2 * V * D and pc.shared_experts == 0 and pc.dense_mlp == 0
    assert pc.flops_per_token == 2 * (11088 - 2 * V * D) == 2 * pc.active_non_embedding
    assert (pc.num_experts, pc.top_k, pc.num_shared_experts, pc.num_layers) == (E, K, 0, L)


def test_tiny_mixtral_matches_plain_torch_modules():
    model = _TinyMixtral()
    pc = count_params(TINY)
    assert pc.total == sum(p.numel() for p in model.parameters())
    unused = sum(p.numel() for layer in model.layers for ex in layer.experts[K:] for p in ex.parameters())
    assert pc.active == pc.total - unused


def test_tied_embeddings_count_once():
    untied, tied = count_params(TINY), count_params({**TINY, "tie_word_embeddings": True})
    assert untied.total - tied.total == V * D
    assert tied.embedding == V * D and tied.active == untied.active - V * D


# --- Hugging Face transformers as the reference for every family ------------------------------

def _hf_count(config: dict) -> tuple[int, int]:
    """(total, active) of the transformers model on the meta device; active = 1 - (E-K)/E of experts."""
    from transformers import AutoConfig, AutoModelForCausalLM

    fields = {k: v for k, v in config.items() if k not in ("auto_map", "quantization_config")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf_config = AutoConfig.for_model(fields.pop("model_type"), **fields)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(hf_config)
    total = routed = 0
    for name, p in model.named_parameters():
        total += p.numel()
        routed += p.numel() if re.search(r"\.experts\.", name) else 0
    # DeepSeek-V3's e_score_correction_bias is a stored checkpoint tensor but a buffer here.
    total += sum(b.numel() for n, b in model.named_buffers() if n.endswith("e_score_correction_bias"))
    pc = count_params(config)
    active = total - routed + routed * pc.top_k // max(pc.num_experts, 1)
    if not pc.input_embedding_active:
        active -= model.get_input_embeddings().weight.numel()
    return total, active


@pytest.mark.parametrize("repo", sorted(PUBLISHED))
def test_card_models_match_transformers_exactly(repo):
    config = MODEL_CARDS[repo].config
    pc = count_params(config)
    assert (pc.total, pc.active) == _hf_count(config)


SMALL_VARIANTS = {
    "qwen2_moe sparse step and dense layers": {
        "model_type": "qwen2_moe", "vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 4,
        "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 48, "num_experts": 6,
        "num_experts_per_tok": 2, "moe_intermediate_size": 8, "shared_expert_intermediate_size": 24,
        "decoder_sparse_step": 2, "mlp_only_layers": [1]},
    "qwen3_moe with attention bias, tied": {
        "model_type": "qwen3_moe", "vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "intermediate_size": 40,
        "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 8, "attention_bias": True,
        "tie_word_embeddings": True, "mlp_only_layers": [0]},
    "olmoe gqa": {
        "model_type": "olmoe", "vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 8, "num_experts": 4,
        "num_experts_per_tok": 2},
    "deepseek_v3 no q_lora, one dense layer": {
        "model_type": "deepseek_v3", "vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 3,
        "num_attention_heads": 4, "num_key_value_heads": 4, "intermediate_size": 40, "q_lora_rank": None,
        "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 8,
        "n_routed_experts": 8, "n_shared_experts": 2, "num_experts_per_tok": 2, "moe_intermediate_size": 8,
        "first_k_dense_replace": 1, "n_group": 1, "topk_group": 1, "topk_method": "noaux_tc"},
    "dbrx": {
        "model_type": "dbrx", "vocab_size": 64, "d_model": 32, "n_layers": 2, "n_heads": 4,
        "attn_config": {"kv_n_heads": 2, "rope_theta": 500000},
        "ffn_config": {"ffn_hidden_size": 8, "moe_num_experts": 4, "moe_top_k": 2}},
    "dense llama": {
        "model_type": "llama", "vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 40},
    "mixtral_like with shared experts": mixtral_like(8, 2, 64, 16, 3, shared_experts=2, vocab_size=50),
}


@pytest.mark.parametrize("name", sorted(SMALL_VARIANTS))
def test_layer_layout_fields_match_transformers(name):
    config = SMALL_VARIANTS[name]
    pc = count_params(config)
    assert (pc.total, pc.active) == _hf_count(config)


def test_qwen_layer_rules_and_deepseek_dense_layers_are_counted():
    qwen = count_params(SMALL_VARIANTS["qwen2_moe sparse step and dense layers"])
    assert qwen.num_moe_layers == 1  # layers 1 and 3 match the step; layer 1 is in mlp_only_layers
    assert qwen.dense_mlp == 3 * 3 * 32 * 48
    ds = count_params(SMALL_VARIANTS["deepseek_v3 no q_lora, one dense layer"])
    assert ds.num_moe_layers == 2 and ds.dense_mlp == 3 * 32 * 40
    assert ds.shared_experts == 2 * 3 * 32 * (2 * 8) and ds.num_shared_experts == 2


# --- validation ------------------------------------------------------------------------------

@pytest.mark.parametrize(("config", "field"), [
    ({k: v for k, v in TINY.items() if k != "hidden_size"}, "hidden_size"),
    ({k: v for k, v in TINY.items() if k != "num_local_experts"}, "num_local_experts"),
    ({**TINY, "num_hidden_layers": None}, "num_hidden_layers"),
    ({**SMALL_VARIANTS["dbrx"], "ffn_config": {"moe_num_experts": 4, "moe_top_k": 2}},
     "ffn_config.ffn_hidden_size"),
    ({k: v for k, v in SMALL_VARIANTS["dbrx"].items() if k != "attn_config"}, "attn_config"),
    ({k: v for k, v in MODEL_CARDS["deepseek-ai/DeepSeek-V3"].config.items() if k != "kv_lora_rank"},
     "kv_lora_rank"),
])
def test_missing_required_field_names_it(config, field):
    with pytest.raises(ValueError, match=re.escape(repr(field))):
        count_params(config)


@pytest.mark.parametrize(("patch", "message"), [
    ({"hidden_size": "4096"}, "must be an integer"),
    ({"hidden_size": -16}, "must be >= 1"),
    ({"num_local_experts": 4.5}, "must be an integer"),
    ({"num_experts_per_tok": True}, "must be an integer"),
    ({"num_experts_per_tok": 5}, "exceeds"),
    ({"tie_word_embeddings": "yes"}, "true or false"),
    ({"model_type": "gpt_oss_future"}, "unsupported model_type"),
    ({"model_type": 7}, "must be a string"),
])
def test_malformed_values_are_rejected(patch, message):
    with pytest.raises(ValueError, match=message):
        count_params({**TINY, **patch})


def test_malformed_layer_list_and_non_mapping_are_rejected():
    bad = {**SMALL_VARIANTS["qwen2_moe sparse step and dense layers"], "mlp_only_layers": [9]}
    with pytest.raises(ValueError, match="mlp_only_layers"):
        count_params(bad)
    with pytest.raises(ValueError, match="mapping"):
        count_params([("hidden_size", 16)])  # type: ignore[arg-type]


def test_unknown_fields_are_ignored_and_integral_floats_accepted():
    noisy = {**TINY, "rope_theta": 1e6, "some_future_flag": {"nested": [1, 2]}, "hidden_size": 16.0}
    assert count_params(noisy) == count_params(TINY)


def test_dispatch_without_model_type_uses_architectures_then_field_hints():
    no_type = {k: v for k, v in MODEL_CARDS["Qwen/Qwen3-30B-A3B"].config.items() if k != "model_type"}
    assert count_params(no_type).model_type == "qwen3_moe"
    bare = {k: v for k, v in no_type.items() if k != "architectures"}
    assert count_params(bare) == count_params(no_type)
    ds = {k: v for k, v in MODEL_CARDS["deepseek-ai/DeepSeek-V3"].config.items()
          if k not in ("model_type", "architectures")}
    assert count_params(ds).model_type == "deepseek_v3"
    with pytest.raises(ValueError, match="no 'model_type'"):
        count_params({"hidden_size": 16})


def test_param_count_is_frozen():
    pc = count_params(TINY)
    assert isinstance(pc, ParamCount)
    with pytest.raises(AttributeError):
        pc.total = 0  # type: ignore[misc]


# --- helpers for the lessons -----------------------------------------------------------------

def test_mixtral_like_counts_like_the_hand_formula():
    cfg = mixtral_like(num_experts=E, top_k=K, d_model=D, d_ff=F, layers=L, vocab_size=V, num_heads=H,
                       num_kv_heads=KV)
    assert count_params(cfg) == count_params(TINY)
    shared = count_params(
        mixtral_like(E, K, D, F, L, shared_experts=1, vocab_size=V, num_heads=H, num_kv_heads=KV))
    # one always-on expert of width F, its sigmoid gate (D weights), and nothing else
    assert shared.total - count_params(TINY).total == L * (3 * D * F + D)
    assert shared.active - count_params(TINY).active == L * (3 * D * F + D)
    with pytest.raises(ValueError, match="must divide"):
        mixtral_like(4, 2, 30, 8, 1, num_heads=4)


def test_dense_equivalent_has_the_moe_active_parameters():
    de = dense_equivalent(TINY)
    pc = count_params(TINY)
    assert de.ffn_width == K * F
    dense = {**TINY, "model_type": "llama", "intermediate_size": de.ffn_width}
    dense.pop("num_local_experts")
    assert count_params(dense).total == pc.active - pc.router  # the same weights minus the router
    assert de.params == pc.active and de.flops_per_token == pc.flops_per_token
    assert de.memory_ratio == pytest.approx(17232 / 11088)


def test_comparison_rows_cover_every_card():
    rows = comparison_rows()
    assert [r["model"] for r in rows] == list(MODEL_CARDS)
    assert all(r["active_b"] < r["total_b"] for r in rows)
