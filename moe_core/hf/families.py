"""One function per transformers family: its config.json -> FamilyMoEConfig, its block's tensors ->
moe_core's names. Each reads transformers==5.23's `modeling_<family>.py` (cited per function).

moe_core's names: `router.gate.weight [E, D]` (+ `.bias`), `router.expert_bias [E]` (selection-only
score correction), `experts.w1 [E, 2F, D]` (rows 0:F gate, F:2F up; [E, F, D] when not gated),
`experts.w2 [E, D, F]`, `experts.b1`, `experts.b2`, `shared_experts.gate_up_proj.weight [2F_s, D]`,
`shared_experts.down_proj.weight [D, F_s]`, `shared_expert_gate.weight [1, D]`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

from moe_core.config import ACTIVATIONS, FamilyMoEConfig

_REQUIRED = object()


@dataclass(frozen=True)
class BlockSpec:
    config: FamilyMoEConfig
    convert: Callable[[dict], dict]  # transformers' block state dict -> moe_core's
    names: tuple[str, ...]  # the transformers tensor names the block needs (for error messages)


def _get(cfg: Mapping[str, Any], *names: str, default: Any = _REQUIRED) -> Any:
    """The first of `names` present and not null in the config, else default (or a clear error)."""
    for name in names:
        if cfg.get(name) is not None:
            return cfg[name]
    if default is _REQUIRED:
        raise ValueError(f"config for model_type {cfg.get('model_type')!r} lacks {' or '.join(names)}")
    return default


def _converter(table: Mapping[str, tuple[str, ...]], build: Callable[[dict], dict]) -> Callable[[dict], dict]:
    """Wrap `build` so an unknown or missing tensor name is a clear ValueError."""
    names = tuple(n for group in table.values() for n in group)

    def convert(sd: dict) -> dict:
        unexpected = sorted(set(sd) - set(names))
        if unexpected:
            raise ValueError(f"unexpected tensors {unexpected}; this block's tensors are {list(names)}")
        missing = [n for n in names if n not in sd and not n.endswith("e_score_correction_bias")]
        if missing:
            raise ValueError(f"state_dict lacks {missing}")
        return build(sd)

    return convert


def _shared(sd: dict, prefix: str) -> dict:
    """An HF SwiGLU MLP (gate_proj, up_proj, down_proj) as moe_core's SwiGLUMLP."""
    return {
        "shared_experts.gate_up_proj.weight": torch.cat(
            [sd[f"{prefix}.gate_proj.weight"], sd[f"{prefix}.up_proj.weight"]]
        ),
        "shared_experts.down_proj.weight": sd[f"{prefix}.down_proj.weight"],
    }


_SHARED = lambda p: tuple(f"{p}.{n}_proj.weight" for n in ("gate", "up", "down"))
_STACKED = ("experts.gate_up_proj", "experts.down_proj")


def _act(name: str) -> str:
    if name not in ACTIVATIONS:
        raise ValueError(f"hidden_act {name!r} is not supported; moe_core knows {ACTIVATIONS}")
    return name


def _spec(config: FamilyMoEConfig, table: dict, build: Callable[[dict], dict]) -> BlockSpec:
    return BlockSpec(config, _converter(table, build), tuple(n for g in table.values() for n in g))


# --- softmax top-k families with stacked SwiGLU experts ---------------------------------------------


def _softmax_topk(cfg, backend, *, gate, renormalize, experts_key, topk_first=False, router_bias=False):
    """Mixtral, Qwen3-MoE, OLMoE, Jamba, Granite-MoE: gate -> softmax (or top-k first) -> experts."""
    config = FamilyMoEConfig(
        hidden_size=_get(cfg, "hidden_size"), intermediate_size=_get(cfg, *experts_key),
        num_experts=_get(cfg, "num_local_experts", "num_experts"), top_k=_get(cfg, "num_experts_per_tok"),
        renormalize=renormalize, topk_before_scoring=topk_first, hidden_act=_act(_get(cfg, "hidden_act",
        default="silu")), backend=backend,
    )  # fmt: skip
    table = {"router": (f"{gate}.weight",), "experts": _STACKED}

    def build(sd):
        return {"router.gate.weight": sd[f"{gate}.weight"], "experts.w1": sd["experts.gate_up_proj"],
                "experts.w2": sd["experts.down_proj"]}

    return _spec(config, table, build)


def mixtral(cfg, backend):
    """MixtralSparseMoeBlock: softmax in fp32, top-k, always renormalised."""
    return _softmax_topk(cfg, backend, gate="gate", renormalize=True, experts_key=("intermediate_size",))


def qwen3_moe(cfg, backend):
    """Qwen3MoeSparseMoeBlock: softmax, top-k, renormalised if norm_topk_prob (default False)."""
    norm = bool(_get(cfg, "norm_topk_prob", default=False))
    return _softmax_topk(cfg, backend, gate="gate", renormalize=norm, experts_key=("moe_intermediate_size",))


def olmoe(cfg, backend):
    """OlmoeSparseMoeBlock: as Qwen3-MoE (norm_topk_prob, default False)."""
    norm = bool(_get(cfg, "norm_topk_prob", default=False))
    return _softmax_topk(cfg, backend, gate="gate", renormalize=norm, experts_key=("intermediate_size",))


def jamba(cfg, backend):
    """JambaSparseMoeBlock: softmax, top-k, never renormalised."""
    return _softmax_topk(cfg, backend, gate="router", renormalize=False, experts_key=("intermediate_size",))


def granitemoe(cfg, backend):
    """GraniteMoeMoE: top-k of the logits, softmax over those K."""
    return _softmax_topk(cfg, backend, gate="router", renormalize=False, experts_key=("intermediate_size",),
                         topk_first=True)


def qwen2_moe(cfg, backend):
    """Qwen2MoeSparseMoeBlock: Qwen3's router + one shared expert scaled by sigmoid(shared_expert_gate x)."""
    spec = qwen3_moe(cfg, backend)
    config = FamilyMoEConfig(**{**_fields(spec.config), "num_shared_experts": 1, "shared_expert_gate": True,
                                "shared_intermediate_size": _get(cfg, "shared_expert_intermediate_size")})
    table = {"router": ("gate.weight", "shared_expert_gate.weight"), "experts": _STACKED,
             "shared": _SHARED("shared_expert")}

    def build(sd):
        routed = {k: v for k, v in sd.items() if not k.startswith("shared_expert")}
        return {**spec.convert(routed), **_shared(sd, "shared_expert"),
                "shared_expert_gate.weight": sd["shared_expert_gate.weight"]}

    return _spec(config, table, build)


def _fields(config: FamilyMoEConfig) -> dict:
    return asdict(config)


# --- DeepSeek and GLM: groups, scaling, shared experts -----------------------------------------


def _deepseek_like(cfg, backend, *, v3: bool):
    num_experts = _get(cfg, "n_routed_experts", "num_local_experts", "num_experts")
    n_shared = _get(cfg, "n_shared_experts")
    groups: dict[str, Any] = {}
    if v3:  # DeepseekV3TopkRouter / Glm4MoeTopkRouter always run the group step (n_group may be 1)
        groups = dict(n_group=_get(cfg, "n_group", default=1), topk_group=_get(cfg, "topk_group", default=1),
                      group_scoring="top2_sum")
    elif _get(cfg, "topk_method", default="greedy") == "group_limited_greedy":
        groups = dict(n_group=_get(cfg, "n_group"), topk_group=_get(cfg, "topk_group"), group_scoring="max")
    if _get(cfg, "mlp_bias", default=False):
        raise ValueError("DeepSeek-V2 with mlp_bias=True (biased shared experts) is not supported")
    config = FamilyMoEConfig(
        hidden_size=_get(cfg, "hidden_size"), intermediate_size=_get(cfg, "moe_intermediate_size"),
        num_experts=num_experts, top_k=_get(cfg, "num_experts_per_tok"),
        num_shared_experts=n_shared, routing="sigmoid_bias" if v3 else "softmax_topk",
        # transformers 5.23's DeepseekV2TopkRouter ignores norm_topk_prob: never renormalised.
        renormalize=bool(_get(cfg, "norm_topk_prob", default=True)) if v3 else False,
        routed_scaling_factor=float(_get(cfg, "routed_scaling_factor", default=1.0)), router_fp32=True,
        hidden_act=_act(_get(cfg, "hidden_act", default="silu")), backend=backend, **groups,
    )  # fmt: skip
    router = ("gate.weight", "gate.e_score_correction_bias") if v3 else ("gate.weight",)
    table = {"router": router, "experts": _STACKED, "shared": _SHARED("shared_experts")}

    def build(sd):
        out = {"router.gate.weight": sd["gate.weight"], "experts.w1": sd["experts.gate_up_proj"],
               "experts.w2": sd["experts.down_proj"], **_shared(sd, "shared_experts")}
        bias = sd.get("gate.e_score_correction_bias")
        out["router.expert_bias"] = torch.zeros(num_experts) if bias is None else bias
        return out

    return _spec(config, table, build)


def deepseek_v2(cfg, backend):
    """DeepseekV2Moe: softmax, greedy or group-limited (group = its best expert) top-k, x scaling."""
    return _deepseek_like(cfg, backend, v3=False)


def deepseek_v3(cfg, backend):
    """DeepseekV3MoE: sigmoid, + e_score_correction_bias, groups by top-2 sum, renormalise, x scaling."""
    return _deepseek_like(cfg, backend, v3=True)


def glm4_moe(cfg, backend):
    """Glm4MoeMoE: DeepSeek-V3's router and shared experts."""
    return _deepseek_like(cfg, backend, v3=True)


# --- the rest: each one its own layout ---------------------------------------------------------


def gpt_oss(cfg, backend):
    """GptOssMLP: biased router, top-k logits -> softmax; clamped SwiGLU experts with biases.

    transformers stores gate_up_proj [E, D, 2F] with gate and up *interleaved* (gate at even columns).
    """
    config = FamilyMoEConfig(
        hidden_size=_get(cfg, "hidden_size"), intermediate_size=_get(cfg, "intermediate_size"),
        num_experts=_get(cfg, "num_local_experts"), top_k=_get(cfg, "num_experts_per_tok"),
        renormalize=False, topk_before_scoring=True, router_bias=True, hidden_act="swigluoai", has_bias=True,
        swiglu_alpha=float(_get(cfg, "swiglu_alpha", default=1.702)),
        swiglu_limit=float(_get(cfg, "swiglu_limit", default=7.0)), backend=backend,
    )  # fmt: skip
    table = {"router": ("router.weight", "router.bias"),
             "experts": ("experts.gate_up_proj", "experts.gate_up_proj_bias", "experts.down_proj",
                         "experts.down_proj_bias")}

    def build(sd):
        gu, gub = sd["experts.gate_up_proj"], sd["experts.gate_up_proj_bias"]
        return {"router.gate.weight": sd["router.weight"], "router.gate.bias": sd["router.bias"],
                "experts.w1": torch.cat([gu[..., ::2], gu[..., 1::2]], dim=-1).transpose(1, 2),
                "experts.b1": torch.cat([gub[..., ::2], gub[..., 1::2]], dim=-1),
                "experts.w2": sd["experts.down_proj"].transpose(1, 2),
                "experts.b2": sd["experts.down_proj_bias"]}

    return _spec(config, table, build)


def dbrx(cfg, backend):
    """DbrxFFN: softmax, top-k, weights / their Lp norm (moe_normalize_expert_weights; None = off)."""
    ffn = _get(cfg, "ffn_config")
    num_experts, ffn_size = _get(ffn, "moe_num_experts"), _get(ffn, "ffn_hidden_size")
    hidden = _get(cfg, "d_model")
    p = ffn.get("moe_normalize_expert_weights", 1.0)  # transformers' default; null turns it off
    config = FamilyMoEConfig(
        hidden_size=hidden, intermediate_size=ffn_size, num_experts=num_experts, top_k=_get(ffn, "moe_top_k"),
        renormalize=p is not None, renormalize_p=float(p or 1.0),
        hidden_act=_act((_get(ffn, "ffn_act_fn", default=None) or {}).get("name", "silu")), backend=backend,
    )  # fmt: skip
    table = {"router": ("router.layer.weight",),
             "experts": ("experts.mlp.w1", "experts.mlp.v1", "experts.mlp.w2")}

    def build(sd):
        split = lambda t: t.reshape(num_experts, ffn_size, hidden)
        return {"router.gate.weight": sd["router.layer.weight"],
                "experts.w1": torch.cat([split(sd["experts.mlp.w1"]), split(sd["experts.mlp.v1"])], dim=1),
                "experts.w2": split(sd["experts.mlp.w2"]).transpose(1, 2)}

    return _spec(config, table, build)


def phimoe(cfg, backend):
    """PhimoeSparseMoeBlock: sparsemixer top-2 (eval mode), jitter eps = router_jitter_noise."""
    config = FamilyMoEConfig(
        hidden_size=_get(cfg, "hidden_size"), intermediate_size=_get(cfg, "intermediate_size"),
        num_experts=_get(cfg, "num_local_experts"), top_k=2, routing="sparsemixer",
        sparsemixer_jitter_eps=float(_get(cfg, "router_jitter_noise", default=0.01)),
        hidden_act=_act(_get(cfg, "hidden_act", default="silu")), backend=backend,
    )  # fmt: skip
    return _spec(config, {"router": ("router.weight",), "experts": _STACKED}, lambda sd: {
        "router.gate.weight": sd["router.weight"], "experts.w1": sd["experts.gate_up_proj"],
        "experts.w2": sd["experts.down_proj"]})


def llama4_text(cfg, backend):
    """Llama4TextMoe: top-k logits -> sigmoid, the weight scales the expert's *input*; one shared expert."""
    config = FamilyMoEConfig(
        hidden_size=_get(cfg, "hidden_size"), intermediate_size=_get(cfg, "intermediate_size"),
        num_experts=_get(cfg, "num_local_experts"), top_k=_get(cfg, "num_experts_per_tok"),
        routing="sigmoid_topk", renormalize=False, apply_router_weight_on_input=True, num_shared_experts=1,
        hidden_act=_act(_get(cfg, "hidden_act", default="silu")), backend=backend,
    )  # fmt: skip
    table = {"router": ("router.weight",), "experts": _STACKED, "shared": _SHARED("shared_expert")}

    def build(sd):  # Llama-4 stores gate_up_proj [E, D, 2F] (gate first) and down_proj [E, F, D]
        return {"router.gate.weight": sd["router.weight"],
                "experts.w1": sd["experts.gate_up_proj"].transpose(1, 2),
                "experts.w2": sd["experts.down_proj"].transpose(1, 2), **_shared(sd, "shared_expert")}

    return _spec(config, table, build)


def switch_transformers(cfg, backend):
    """SwitchTransformersSparseMLP: softmax top-1 (not renormalised), expert_capacity per sequence,
    ReLU (dense_act_fn) experts wi/wo, one nn.Linear each."""
    num_experts = _get(cfg, "num_experts")
    bias = bool(_get(cfg, "router_bias", default=False))
    config = FamilyMoEConfig(
        hidden_size=_get(cfg, "d_model"), intermediate_size=_get(cfg, "d_ff"), num_experts=num_experts,
        top_k=1, renormalize=False, expert_capacity=_get(cfg, "expert_capacity"), router_bias=bias,
        is_act_and_mul=False, router_fp32=_get(cfg, "router_dtype", default="float32") == "float32",
        hidden_act=_act(_get(cfg, "dense_act_fn", default="relu")), backend=backend,
    )  # fmt: skip
    experts = tuple(f"experts.expert_{e}.{w}.weight" for e in range(num_experts) for w in ("wi", "wo"))
    table = {"router": ("router.classifier.weight",) + (("router.classifier.bias",) if bias else ()),
             "experts": experts}

    def build(sd):
        out = {"router.gate.weight": sd["router.classifier.weight"],
               "experts.w1": torch.stack([sd[f"experts.expert_{e}.wi.weight"] for e in range(num_experts)]),
               "experts.w2": torch.stack([sd[f"experts.expert_{e}.wo.weight"] for e in range(num_experts)])}
        if bias:
            out["router.gate.bias"] = sd["router.classifier.bias"]
        return out

    return _spec(config, table, build)


FAMILIES: dict[str, Callable[[Mapping[str, Any], str], BlockSpec]] = {
    "mixtral": mixtral, "qwen2_moe": qwen2_moe, "qwen3_moe": qwen3_moe, "olmoe": olmoe,
    "deepseek_v2": deepseek_v2, "deepseek_v3": deepseek_v3, "glm4_moe": glm4_moe, "gpt_oss": gpt_oss,
    "dbrx": dbrx, "granitemoe": granitemoe, "jamba": jamba, "phimoe": phimoe, "llama4_text": llama4_text,
    "switch_transformers": switch_transformers,
}
