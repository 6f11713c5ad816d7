"""Total and active parameter counts (and FLOPs per token) from a Hugging Face ``config.json``.

Why: a Mixture-of-Experts model stores many experts but runs only ``top_k`` of them per token, so
"how big is it?" has two answers. ``count_params`` gives both, counted tensor by tensor exactly as
the Hugging Face ``transformers`` modelling code builds the model (checked against it in the tests),
for Mixtral, Qwen2-MoE / Qwen1.5-MoE, Qwen3-MoE, OLMoE, DBRX, DeepSeek-V2/V3 (MLA attention), PhiMoE,
GPT-OSS, Llama-4 (text), GLM-4.5, Granite-MoE, Jamba (Mamba layers) and Switch Transformers.
Pure Python on purpose: the lesson calculator calls it on every slider move.

Shape legend: ``V`` vocabulary, ``D`` hidden size, ``L`` layers, ``H`` query heads, ``KV`` key/value
heads, ``hd`` head dim, ``F`` expert FFN width, ``E`` routed experts, ``K`` experts per token.

Conventions (the way model cards count):

- ``total``: every weight of the main model: embeddings, attention, norms, routers, all experts.
  DeepSeek-V3's multi-token-prediction (MTP) module is *not* in ``total`` (the card's "671B");
  it is ``mtp``, and ``total_with_mtp`` is the card's "685B = 671B main + 14B MTP", counting the
  MTP module's own copies of the embedding and output head as stored in the checkpoint.
- ``active``: the weights one token touches: ``total`` minus the ``E - K`` routed experts it skips.
  Mistral, Qwen, OLMoE and Databricks count the input-embedding table in their "active" figure.
  For the DeepSeek family (and GLM-4.5 and GPT-OSS, whose cards' figures it matches) ``active``
  leaves the input embedding out; ``input_embedding_active`` says which. DeepSeek-V3's
  README_WEIGHTS says "36.7B (including 0.9B for Embedding and 0.9B for the output Head)": our
  36.6B without the input embedding is the nearer count (37.6B with it); OpenAI's gpt-oss model card
  lists 5.13B / 3.61B active, which is exactly the count without the input embedding.
- ``flops_per_token``: ``2 * active_non_embedding`` -- one multiply and one add per active weight
  in the forward pass (Kaplan et al. 2020, https://arxiv.org/abs/2001.08361). It leaves out the
  output-head matmul and the attention-score FLOPs that grow with context length.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_MISSING = object()


@dataclass(frozen=True)
class ParamCount:
    """Parameter breakdown of one model. Every field is a count of scalar weights unless noted."""

    model_type: str
    total: int  # main model, all experts (see module docstring)
    active: int  # touched by one token (card convention, see input_embedding_active)
    embedding: int  # input embedding + untied output head (V*D each)
    attention: int  # q/k/v/o (or MLA) projections and their biases
    routed_experts: int  # all routed experts of all MoE layers
    shared_experts: int  # always-on experts (Qwen2-MoE shared expert, DeepSeek n_shared_experts)
    dense_mlp: int  # FFNs of dense layers (DeepSeek first_k_dense_replace, Qwen mlp_only_layers)
    router: int  # gate weights, Qwen's shared_expert_gate, DeepSeek-V3's e_score_correction_bias
    norms: int  # every RMSNorm/LayerNorm weight, including q/k norms and MLA latent norms
    active_routed_experts: int  # the K routed experts per MoE layer one token uses
    flops_per_token: int  # 2 * active_non_embedding (forward pass)
    num_experts: int
    top_k: int
    num_shared_experts: int
    num_layers: int
    num_moe_layers: int
    mtp: int = 0  # DeepSeek-V3 multi-token-prediction module(s), not in total
    input_embedding_active: bool = True  # does `active` include the V*D input-embedding table?
    tie_word_embeddings: bool = False

    @property
    def total_with_mtp(self) -> int:
        """Main model plus MTP module(s): the number a checkpoint's file size reflects."""
        return self.total + self.mtp

    @property
    def non_embedding(self) -> int:
        """``total`` without the input embedding and output head."""
        return self.total - self.embedding

    @property
    def active_non_embedding(self) -> int:
        """Active weights that do matmuls in the transformer blocks (the FLOPs base)."""
        return self.non_embedding - self.routed_experts + self.active_routed_experts

    @property
    def active_with_input_embedding(self) -> int:
        """``active`` under the Mistral/Qwen convention for every family (one column for tables)."""
        skipped = not (self.input_embedding_active or self.tie_word_embeddings)
        return self.active + (self.embedding // 2 if skipped else 0)

    @property
    def sparsity(self) -> float:
        """Fraction of the weights a token touches: ``active / total``."""
        return self.active / self.total


@dataclass(frozen=True)
class _Arch:
    """One architecture reduced to what counting needs; built by a per-family parser below."""

    model_type: str
    vocab: int
    d: int
    layers: int
    attn: int  # projection weights + biases of one layer's attention
    attn_norms: int  # norms inside one layer's attention (q/k norm, MLA latent norms)
    block_norm: int  # one block-level norm (D for RMSNorm / bias-free LayerNorm)
    moe_layers: int
    num_experts: int
    top_k: int
    expert_ffn: int
    dense_ffn: int
    shared_ffn: int  # summed width of the shared experts (one SwiGLU of this width)
    num_shared: int
    router_extra: int  # per MoE layer, besides the E*D gate: shared gate, correction bias
    tie: bool
    input_embedding_active: bool = True
    mlp_bias: bool = False
    mtp_layers: int = 0
    expert_bias: bool = False  # GPT-OSS experts: gate_up (2F) and down (D) biases
    extra_attention: int = 0  # token mixers not in `attn` (Jamba's Mamba layers), all layers together
    head_bias: int = 0  # output-head bias (PhiMoE lm_head_bias): V


def _swiglu(d: int, f: int, bias: bool = False) -> int:
    """gate, up (D->F) and down (F->D) projections: ``3*D*F`` (+ ``2F + D`` biases)."""
    return 3 * d * f + ((2 * f + d) if bias else 0)


def _assemble(a: _Arch) -> ParamCount:
    """Sum the per-layer pieces into a ParamCount."""
    dense_layers = a.layers - a.moe_layers
    embedding = a.vocab * a.d * (1 if a.tie else 2) + a.head_bias
    attention = a.layers * a.attn + a.extra_attention
    norms = a.layers * (2 * a.block_norm + a.attn_norms) + a.block_norm  # + final norm
    expert = _swiglu(a.d, a.expert_ffn, a.expert_bias)
    routed = a.moe_layers * a.num_experts * expert
    active_routed = a.moe_layers * a.top_k * expert
    shared = a.moe_layers * (_swiglu(a.d, a.shared_ffn) if a.shared_ffn else 0)
    dense = dense_layers * _swiglu(a.d, a.dense_ffn, a.mlp_bias)
    router = a.moe_layers * (a.num_experts * a.d + a.router_extra)
    total = embedding + attention + norms + routed + shared + dense + router
    skipped_input = 0 if (a.input_embedding_active or a.tie) else a.vocab * a.d
    active = total - routed + active_routed - skipped_input
    mtp = 0
    if a.mtp_layers:
        # DeepSeek-V3 MTP module: one MoE decoder block + enorm, hnorm, eh_proj (2D->D), head norm,
        # and its own stored copies of embed_tokens and shared_head.head (README_WEIGHTS.md).
        block = a.attn + a.attn_norms + 2 * a.block_norm + expert * a.num_experts
        block += (_swiglu(a.d, a.shared_ffn) if a.shared_ffn else 0) + a.num_experts * a.d + a.router_extra
        mtp = a.mtp_layers * (block + 3 * a.block_norm + 2 * a.d * a.d + 2 * a.vocab * a.d)
    non_emb_active = total - embedding - routed + active_routed
    return ParamCount(
        model_type=a.model_type, total=total, active=active, embedding=embedding, attention=attention,
        routed_experts=routed, shared_experts=shared, dense_mlp=dense, router=router, norms=norms,
        active_routed_experts=active_routed, flops_per_token=2 * non_emb_active,
        num_experts=a.num_experts, top_k=a.top_k, num_shared_experts=a.num_shared, num_layers=a.layers,
        num_moe_layers=a.moe_layers, mtp=mtp, input_embedding_active=a.input_embedding_active,
        tie_word_embeddings=a.tie,
    )


# --- reading fields ---------------------------------------------------------------------------


class _Fields:
    """Typed, validated access to a config mapping; errors name the field and the model type."""

    def __init__(self, cfg: Mapping[str, Any], model_type: str, prefix: str = "") -> None:
        self.cfg, self.model_type, self.prefix = cfg, model_type, prefix

    def _raw(self, key: str, default: Any) -> Any:
        if key in self.cfg and self.cfg[key] is not None:
            return self.cfg[key]
        if default is _MISSING:
            raise ValueError(f"config for model_type {self.model_type!r} is missing required field "
                             f"{self.prefix + key!r} (absent or null)")
        return default

    def int(self, key: str, default: Any = _MISSING, minimum: int = 1) -> int:
        value = self._raw(key, default)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"field {self.prefix + key!r} must be an integer, got "
                             f"{type(value).__name__} {value!r}")
        if value < minimum:
            raise ValueError(f"field {self.prefix + key!r} must be >= {minimum}, got {value}")
        return value

    def opt_int(self, key: str, minimum: int = 1) -> int | None:
        return self.int(key, None, minimum) if self.cfg.get(key) is not None else None

    def bool(self, key: str, default: bool) -> bool:
        value = self._raw(key, default)
        if not isinstance(value, bool):
            raise ValueError(f"field {self.prefix + key!r} must be true or false, got {value!r}")
        return value

    def int_list(self, key: str, upper: int) -> list[int]:
        value = self._raw(key, [])
        if not isinstance(value, list | tuple) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v < upper for v in value
        ):
            raise ValueError(f"field {self.prefix + key!r} must be a list of layer indices in "
                             f"[0, {upper}), got {value!r}")
        return list(value)

    def sub(self, key: str) -> _Fields:
        value = self._raw(key, _MISSING)
        if not isinstance(value, Mapping):
            raise ValueError(f"field {key!r} must be an object, got {type(value).__name__}")
        return _Fields(value, self.model_type, prefix=f"{key}.")


def _check_routing(num_experts: int, top_k: int) -> None:
    if top_k > num_experts:
        raise ValueError(f"num_experts_per_tok ({top_k}) exceeds the number of experts ({num_experts})")


def _gqa_attention(f: _Fields, d: int, bias: bool) -> tuple[int, int, int, int]:
    """q/k/v projections (+ biases) and o_proj of grouped-query attention; returns (count, H, KV, hd)."""
    h = f.int("num_attention_heads")
    kv = f.int("num_key_value_heads", h)
    hd = f.int("head_dim", d // h)
    qkv_out = (h + 2 * kv) * hd
    return d * qkv_out + h * hd * d + (qkv_out if bias else 0), h, kv, hd


# --- one parser per family ------------------------------------------------------------------


def _mixtral(f: _Fields, mt: str) -> _Arch:
    """Mixtral (and dense Mistral/Llama when num_local_experts is absent)."""
    d, layers = f.int("hidden_size"), f.int("num_hidden_layers")
    bias = f.bool("attention_bias", False)  # Llama's flag; it also gives o_proj a bias
    attn = _gqa_attention(f, d, bias)[0] + (d if bias else 0)
    e = f.int("num_local_experts", _MISSING if mt in ("mixtral", "granitemoe") else 0, minimum=0)
    k = f.int("num_experts_per_tok") if e else 0
    _check_routing(e, k)
    ffn = f.int("intermediate_size")
    return _Arch(mt, f.int("vocab_size"), d, layers, attn, 0, d, layers if e else 0, e, k, ffn, ffn,
                 0, 0, 0, f.bool("tie_word_embeddings", False), mlp_bias=f.bool("mlp_bias", False))


def _qwen_moe_layers(f: _Fields, layers: int, e: int) -> int:
    """Qwen's rule: layer i is MoE unless in mlp_only_layers, every decoder_sparse_step-th layer."""
    step, dense_only = f.int("decoder_sparse_step", 1), set(f.int_list("mlp_only_layers", layers))
    return sum(1 for i in range(layers) if e > 0 and i not in dense_only and (i + 1) % step == 0)


def _qwen_moe(f: _Fields, mt: str) -> _Arch:
    """Qwen1.5/Qwen2-MoE (qkv bias, one gated shared expert) and Qwen3-MoE (q/k norm, no shared)."""
    d, layers = f.int("hidden_size"), f.int("num_hidden_layers")
    qwen3 = mt == "qwen3_moe"
    bias = f.bool("attention_bias", False) if qwen3 else f.bool("qkv_bias", True)
    attn, _, _, hd = _gqa_attention(f, d, bias)
    if qwen3 and bias:
        attn += d  # Qwen3 attention_bias also gives o_proj a bias
    e = f.int("num_experts", minimum=0)
    k = f.int("num_experts_per_tok")
    _check_routing(e, k)
    shared = 0 if qwen3 else f.int("shared_expert_intermediate_size", minimum=0)
    moe_layers = _qwen_moe_layers(f, layers, e)
    dense_ffn = f.int("intermediate_size") if moe_layers < layers else 0
    return _Arch(mt, f.int("vocab_size"), d, layers, attn, 2 * hd if qwen3 else 0, d, moe_layers, e, k,
                 f.int("moe_intermediate_size"), dense_ffn, shared, 1 if shared else 0,
                 d if shared else 0, f.bool("tie_word_embeddings", False))


def _olmoe(f: _Fields, mt: str) -> _Arch:
    """OLMoE: q_norm over D and k_norm over KV*hd (QK-norm), no shared expert."""
    d, layers = f.int("hidden_size"), f.int("num_hidden_layers")
    attn, _, kv, hd = _gqa_attention(f, d, f.bool("attention_bias", False))
    if f.bool("attention_bias", False):
        attn += d  # o_proj bias
    e, k = f.int("num_experts"), f.int("num_experts_per_tok")
    _check_routing(e, k)
    return _Arch(mt, f.int("vocab_size"), d, layers, attn, d + kv * hd, d, layers, e, k,
                 f.int("intermediate_size"), 0, 0, 0, 0, f.bool("tie_word_embeddings", False))


def _dbrx(f: _Fields, mt: str) -> _Arch:
    """DBRX: fused Wqkv, bias-free LayerNorms, architecture nested in attn_config/ffn_config."""
    d, layers, h = f.int("d_model"), f.int("n_layers"), f.int("n_heads")
    kv = f.sub("attn_config").int("kv_n_heads")
    hd = d // h
    attn = d * (d + 2 * kv * hd) + d * d
    ffn = f.sub("ffn_config")
    e, k = ffn.int("moe_num_experts"), ffn.int("moe_top_k")
    _check_routing(e, k)
    return _Arch(mt, f.int("vocab_size"), d, layers, attn, 0, d, layers, e, k,
                 ffn.int("ffn_hidden_size"), 0, 0, 0, 0, f.bool("tie_word_embeddings", False))


def _deepseek(f: _Fields, mt: str) -> _Arch:
    """DeepSeek-V2/V3: MLA attention, first_k_dense_replace dense layers, shared experts, MTP."""
    d, layers, h = f.int("hidden_size"), f.int("num_hidden_layers"), f.int("num_attention_heads")
    q_rank, kv_rank = f.opt_int("q_lora_rank"), f.int("kv_lora_rank")
    nope, rope, v = f.int("qk_nope_head_dim"), f.int("qk_rope_head_dim"), f.int("v_head_dim")
    b = f.bool("attention_bias", False)
    qk = h * (nope + rope)  # per-token query width: H heads of (no-RoPE + RoPE) dims
    q = d * qk if q_rank is None else d * q_rank + (q_rank if b else 0) + q_rank * qk  # q_a, q_b
    kv_a = d * (kv_rank + rope) + ((kv_rank + rope) if b else 0)
    attn = q + kv_a + kv_rank * h * (nope + v) + h * v * d + (d if b else 0)
    e = f.int("n_routed_experts", 0, minimum=0)
    k = f.int("num_experts_per_tok") if e else 0
    _check_routing(e, k)
    # transformers' DeepseekV3Config defaults to 3 dense layers, V2 to 0: require it for V3.
    first_dense = f.int("first_k_dense_replace", _MISSING if mt == "deepseek_v3" else 0, minimum=0)
    freq = f.int("moe_layer_freq", 1)
    moe_layers = sum(1 for i in range(layers) if e and i >= first_dense and i % freq == 0)
    ffn_e = f.int("moe_intermediate_size") if e else 0
    n_shared = f.int("n_shared_experts", 0, minimum=0) if e else 0
    bias_corr = e if f.cfg.get("topk_method") == "noaux_tc" else 0
    mtp = f.int("num_nextn_predict_layers", 0, minimum=0) if e else 0
    return _Arch(mt, f.int("vocab_size"), d, layers, attn, (q_rank or 0) + kv_rank, d, moe_layers, e,
                 k, ffn_e, f.int("intermediate_size") if moe_layers < layers else 0, n_shared * ffn_e,
                 n_shared, bias_corr, f.bool("tie_word_embeddings", False),
                 input_embedding_active=False, mlp_bias=f.bool("mlp_bias", False), mtp_layers=mtp)


def _phimoe(f: _Fields, mt: str) -> _Arch:
    """PhiMoE (Phi-3.5-MoE): LayerNorms with bias, attention and output head with optional biases."""
    d, layers = f.int("hidden_size"), f.int("num_hidden_layers")
    bias = f.bool("attention_bias", False)
    attn = _gqa_attention(f, d, bias)[0] + (d if bias else 0)  # o_proj shares the flag
    e, k = f.int("num_local_experts"), f.int("num_experts_per_tok")
    _check_routing(e, k)
    vocab = f.int("vocab_size")
    head_bias = vocab if f.bool("lm_head_bias", False) else 0
    return _Arch(mt, vocab, d, layers, attn, 0, 2 * d, layers, e, k, f.int("intermediate_size"), 0, 0, 0, 0,
                 f.bool("tie_word_embeddings", False), head_bias=head_bias)


def _gpt_oss(f: _Fields, mt: str) -> _Arch:
    """GPT-OSS: biased q/k/v/o and per-head attention sinks; biased router; experts with biases."""
    d, layers = f.int("hidden_size"), f.int("num_hidden_layers")
    bias = f.bool("attention_bias", True)
    attn, h, _, _ = _gqa_attention(f, d, bias)
    attn += (d if bias else 0) + h  # o_proj bias, sinks [H]
    e = f.int("num_local_experts")
    k = f.int("num_experts_per_tok" if f.cfg.get("num_experts_per_tok") is not None else "experts_per_token")
    _check_routing(e, k)
    return _Arch(mt, f.int("vocab_size"), d, layers, attn, 0, d, layers, e, k, f.int("intermediate_size"),
                 0, 0, 0, e, f.bool("tie_word_embeddings", False), input_embedding_active=False,
                 expert_bias=True)


def _llama4(f: _Fields, mt: str) -> _Arch:
    """Llama-4 text model: MoE layers (moe_layers, else every interleave_moe_layer_step-th) with one
    shared expert of the routed width; dense layers of intermediate_size_mlp; no-weight QK L2 norm."""
    d, layers = f.int("hidden_size"), f.int("num_hidden_layers")
    bias = f.bool("attention_bias", False)
    attn = _gqa_attention(f, d, bias)[0] + (d if bias else 0)
    e, k = f.int("num_local_experts"), f.int("num_experts_per_tok")
    _check_routing(e, k)
    step = f.int("interleave_moe_layer_step", 1)
    moe = f.int_list("moe_layers", layers) if f.cfg.get("moe_layers") is not None \
        else list(range(step - 1, layers, step))
    ffn = f.int("intermediate_size")
    dense = f.int("intermediate_size_mlp") if len(moe) < layers else 0
    return _Arch(mt, f.int("vocab_size"), d, layers, attn, 0, d, len(moe), e, k, ffn, dense, ffn, 1, 0,
                 f.bool("tie_word_embeddings", False))


def _glm4_moe(f: _Fields, mt: str) -> _Arch:
    """GLM-4.5 (glm4_moe): GQA with q/k/v bias and optional QK RMSNorm; DeepSeek-V3's MoE layers
    (first_k_dense_replace dense layers, shared experts, e_score_correction_bias) and MTP layers."""
    d, layers = f.int("hidden_size"), f.int("num_hidden_layers")
    attn, _, _, hd = _gqa_attention(f, d, f.bool("attention_bias", False))  # o_proj has no bias
    e, k = f.int("n_routed_experts"), f.int("num_experts_per_tok")
    _check_routing(e, k)
    first_dense = f.int("first_k_dense_replace", 1, minimum=0)
    moe_layers = max(0, layers - first_dense)
    ffn_e, n_shared = f.int("moe_intermediate_size"), f.int("n_shared_experts", 1, minimum=0)
    return _Arch(mt, f.int("vocab_size"), d, layers, attn, 2 * hd if f.bool("use_qk_norm", False) else 0, d,
                 moe_layers, e, k, ffn_e, f.int("intermediate_size") if moe_layers < layers else 0,
                 n_shared * ffn_e, n_shared, e, f.bool("tie_word_embeddings", False),
                 input_embedding_active=False, mtp_layers=f.int("num_nextn_predict_layers", 0, minimum=0))


def _jamba(f: _Fields, mt: str) -> _Arch:
    """Jamba: attention every attn_layer_period-th layer, Mamba mixers elsewhere; MoE every
    expert_layer_period-th layer, dense SwiGLU elsewhere."""
    d, layers = f.int("hidden_size"), f.int("num_hidden_layers")
    attn = _gqa_attention(f, d, False)[0]
    attn_period, attn_offset = f.int("attn_layer_period", 8), f.int("attn_layer_offset", 4, minimum=0)
    exp_period, exp_offset = f.int("expert_layer_period", 2), f.int("expert_layer_offset", 1, minimum=0)
    n_attn = sum(1 for i in range(layers) if i % attn_period == attn_offset)
    inner = f.int("mamba_expand", 2) * d
    state, conv = f.int("mamba_d_state", 16), f.int("mamba_d_conv", 4)
    dt_rank = f.int("mamba_dt_rank", -(-d // 16))
    mamba = (d * 2 * inner + (2 * inner if f.bool("mamba_proj_bias", False) else 0)  # in_proj
             + inner * conv + (inner if f.bool("mamba_conv_bias", True) else 0)  # depthwise conv1d
             + inner * (dt_rank + 2 * state) + dt_rank * inner + inner  # x_proj, dt_proj (+ bias)
             + inner * state + inner + inner * d  # A_log, D, out_proj
             + (d if f.bool("mamba_proj_bias", False) else 0) + dt_rank + 2 * state)  # out bias, dt/B/C norms
    e, k = f.int("num_experts"), f.int("num_experts_per_tok")
    _check_routing(e, k)
    moe_layers = sum(1 for i in range(layers) if e > 1 and i % exp_period == exp_offset)
    # `attn` per layer is 0: attention and Mamba mixers are counted once, in extra_attention.
    return _Arch(mt, f.int("vocab_size"), d, layers, 0, 0, d, moe_layers, e, k, f.int("intermediate_size"),
                 f.int("intermediate_size"), 0, 0, 0, f.bool("tie_word_embeddings", False),
                 extra_attention=n_attn * attn + (layers - n_attn) * mamba)


_PARSERS: dict[str, Callable[[_Fields, str], _Arch]] = {
    "mixtral": _mixtral, "mistral": _mixtral, "llama": _mixtral,
    "qwen2_moe": _qwen_moe, "qwen3_moe": _qwen_moe, "olmoe": _olmoe, "dbrx": _dbrx,
    "deepseek_v2": _deepseek, "deepseek_v3": _deepseek, "phimoe": _phimoe,
    "granitemoe": _mixtral,  # Granite-MoE has Mixtral's layout
    "gpt_oss": _gpt_oss, "llama4_text": _llama4, "glm4_moe": _glm4_moe, "jamba": _jamba,
}
_ARCHITECTURES = {
    "MixtralForCausalLM": "mixtral", "MistralForCausalLM": "mistral", "LlamaForCausalLM": "llama",
    "Qwen2MoeForCausalLM": "qwen2_moe", "Qwen3MoeForCausalLM": "qwen3_moe", "OlmoeForCausalLM": "olmoe",
    "DbrxForCausalLM": "dbrx", "DeepseekV2ForCausalLM": "deepseek_v2", "DeepseekV3ForCausalLM": "deepseek_v3",
    "GraniteMoeForCausalLM": "granitemoe", "PhimoeForCausalLM": "phimoe", "GptOssForCausalLM": "gpt_oss",
    "Llama4ForCausalLM": "llama4_text", "Glm4MoeForCausalLM": "glm4_moe", "JambaForCausalLM": "jamba",
    "SwitchTransformersForConditionalGeneration": "switch_transformers",
}
SUPPORTED_MODEL_TYPES = tuple(sorted([*_PARSERS, "switch_transformers", "llama4"]))


def _switch(f: _Fields, mt: str) -> ParamCount:
    """Switch Transformers (a T5 encoder-decoder): FFN i of a stack is a top-1 MoE of ReLU experts
    (wi D->F, wo F->D) when i % sparse_step == 1 (every layer when the step is 1, as transformers
    builds it); the decoder adds cross-attention; each stack has one relative-position table and a
    final norm; the output head is the shared embedding unless tie_word_embeddings is false."""
    d, d_ff, heads, d_kv = f.int("d_model"), f.int("d_ff"), f.int("num_heads"), f.int("d_kv")
    enc = f.int("num_layers")
    dec = f.int("num_decoder_layers", enc)
    e = f.int("num_experts")

    def sparse(layers: int, step: int) -> int:
        return sum(1 for i in range(layers) if step > 0 and (step == 1 or i % step == 1))

    moe = sparse(enc, f.int("encoder_sparse_step", 1, minimum=0)) + sparse(
        dec, f.int("decoder_sparse_step", 1, minimum=0))
    tie = f.bool("tie_word_embeddings", True)
    embedding = f.int("vocab_size") * d * (1 if tie else 2)
    buckets = f.int("relative_attention_num_buckets", 32)
    attention = (enc + 2 * dec) * 4 * d * heads * d_kv + 2 * buckets * heads  # + one bias table per stack
    norms = (2 * enc + 3 * dec + 2) * d
    ffn = 2 * d * d_ff  # a ReLU FFN: wi and wo
    routed, dense = moe * e * ffn, (enc + dec - moe) * ffn
    router = moe * (e * d + (e if f.bool("router_bias", False) else 0))
    total = embedding + attention + norms + routed + dense + router
    active = total - routed + moe * ffn
    return ParamCount(
        model_type=mt, total=total, active=active, embedding=embedding, attention=attention,
        routed_experts=routed, shared_experts=0, dense_mlp=dense, router=router, norms=norms,
        active_routed_experts=moe * ffn, flops_per_token=2 * (active - embedding), num_experts=e, top_k=1,
        num_shared_experts=0, num_layers=enc + dec, num_moe_layers=moe, tie_word_embeddings=tie,
    )


def _model_type(cfg: Mapping[str, Any]) -> str:
    """``model_type``, else the first known ``architectures`` entry, else a field-shape hint."""
    mt = cfg.get("model_type")
    if mt is not None and not isinstance(mt, str):
        raise ValueError(f"field 'model_type' must be a string, got {mt!r}")
    if mt:
        if mt not in SUPPORTED_MODEL_TYPES:
            raise ValueError(f"unsupported model_type {mt!r}; supported: {', '.join(SUPPORTED_MODEL_TYPES)}")
        return mt
    archs = cfg.get("architectures") or []
    for arch in archs if isinstance(archs, list | tuple) else []:
        if arch in _ARCHITECTURES:
            return _ARCHITECTURES[arch]
    hints = (("kv_lora_rank", "deepseek_v3" if "num_nextn_predict_layers" in cfg else "deepseek_v2"),
             ("ffn_config", "dbrx"), ("num_local_experts", "mixtral"),
             ("shared_expert_intermediate_size", "qwen2_moe"), ("moe_intermediate_size", "qwen3_moe"))
    for key, guess in hints:
        if key in cfg:
            return guess
    raise ValueError("config has no 'model_type' and no recognised 'architectures'; "
                     f"supported model types: {', '.join(SUPPORTED_MODEL_TYPES)}")


def count_params(config: Mapping[str, Any]) -> ParamCount:
    """Count total and active parameters of the model a Hugging Face ``config.json`` describes.

    ``config`` is the parsed JSON (a mapping); unknown fields are ignored. A missing required
    field, a wrong type (a string, a bool where a number belongs) or a negative size raises
    ``ValueError`` naming the field. Dispatch is on ``model_type`` (see SUPPORTED_MODEL_TYPES),
    falling back to ``architectures`` and then to tell-tale fields. For DeepSeek-V3, ``total`` is the
    card's 671B (main model) and ``total_with_mtp`` its 685B (main model + MTP module).
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a mapping (a parsed config.json), got {type(config).__name__}")
    mt = _model_type(config)
    if mt == "llama4":  # multimodal Llama-4: count the language model (text_config), not the vision tower
        text = _Fields(config, mt).sub("text_config").cfg
        return count_params({**text, "model_type": "llama4_text"})
    if mt == "switch_transformers":
        return _switch(_Fields(config, mt), mt)
    return _assemble(_PARSERS[mt](_Fields(config, mt), mt))


@dataclass(frozen=True)
class DenseEquivalent:
    """The dense model that costs a token as much as the MoE: same active parameters and FLOPs."""

    params: int  # = moe.active
    flops_per_token: int  # = moe.flops_per_token
    ffn_width: int  # dense FFN width with the MoE's D and layers: K*F (+ shared width) per MoE layer
    memory_ratio: float  # moe.total / params: how many times more weights the MoE keeps in memory


def dense_equivalent(config: Mapping[str, Any]) -> DenseEquivalent:
    """What a dense model with the MoE's per-token compute looks like (Lesson 1's comparison).

    Its FFN width is what the K routed experts plus the shared experts add up to per token, so a
    dense model with the same D, layers and attention and this FFN width has (up to the router
    weights) exactly the MoE's active parameters.
    """
    pc = count_params(config)
    mt = _model_type(config)
    if mt == "llama4":
        return dense_equivalent({**_Fields(config, mt).sub("text_config").cfg, "model_type": "llama4_text"})
    if mt not in _PARSERS:
        raise ValueError(f"dense_equivalent covers decoder-only models, not {mt!r}")
    arch = _PARSERS[mt](_Fields(config, mt), mt)
    width = arch.top_k * arch.expert_ffn + arch.shared_ffn if arch.moe_layers else arch.dense_ffn
    return DenseEquivalent(pc.active, pc.flops_per_token, width, pc.total / pc.active)
