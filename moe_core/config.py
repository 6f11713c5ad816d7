"""One validated configuration for a sparse MoE layer.

Shape legend used across `moe_core` (torchtitan's convention):
    T tokens, D model dim (hidden_size), F expert FFN dim (intermediate_size),
    E routed experts, K experts per token (top_k), N = T*K routed slots.

Validation lives here so every entry point (layer, CLI, lessons) fails the same way, early, with a
message naming the field — never deep inside a matmul.

`FamilyMoEConfig` adds the options real model families need (issue 16; `moe_core.hf` sets them from a
transformers config). Their names follow transformers / vLLM, and their defaults keep the Mixtral
recipe exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

ROUTINGS = ("softmax_topk", "sigmoid_bias", "expert_choice", "sigmoid_topk", "sparsemixer")
BACKENDS = ("auto", "torch", "loop", "triton")
GROUP_SCORINGS = ("max", "top2_sum")  # DeepSeek-V2 scores a group by its best expert, V3 by its best two
ACTIVATIONS = ("silu", "gelu", "gelu_pytorch_tanh", "gelu_new", "relu", "swigluoai")


@dataclass(frozen=True)
class MoEConfig:
    hidden_size: int = 32  # D
    intermediate_size: int = 64  # F, per routed expert (SwiGLU: w1 has 2F rows)
    num_experts: int = 8  # E
    top_k: int = 2  # K, Mixtral's num_experts_per_tok
    num_shared_experts: int = 0  # DeepSeekMoE / Qwen-MoE style always-on experts
    shared_intermediate_size: int | None = None  # per shared expert; None = intermediate_size
    routing: str = "softmax_topk"  # see ROUTINGS
    renormalize: bool = True  # Mixtral renormalises top-k weights; Switch top-1 does not
    router_temperature: float = 1.0  # logits are divided by it before the softmax
    router_noise_std: float = 0.0  # noisy top-k (Shazeer et al. 2017) with a fixed noise scale
    capacity_factor: float | None = None  # None = no capacity limit, no dropped tokens
    backend: str = "torch"  # expert compute path, see BACKENDS
    block_size: int = 16  # rows per M-block of the grouped GEMM (vLLM's BLOCK_SIZE_M)

    # Options of other model families, declared as fields (with their meaning) in FamilyMoEConfig.
    # Here they are plain class attributes holding the defaults, so a MoEConfig's fields -- and the
    # asdict() that saved checkpoints compare -- stay exactly the Mixtral recipe above.
    n_group = None
    topk_group = None
    group_scoring = "max"
    routed_scaling_factor = 1.0
    score_correction_bias = False
    renormalize_p = 1.0
    topk_before_scoring = False
    sparsemixer_jitter_eps = 0.01
    router_bias = False
    router_fp32 = False
    apply_router_weight_on_input = False
    expert_capacity = None
    hidden_act = "silu"
    is_act_and_mul = True
    has_bias = False
    swiglu_alpha = 1.702
    swiglu_limit = 7.0
    shared_expert_gate = False

    def __post_init__(self) -> None:
        for name in ("hidden_size", "intermediate_size", "num_experts", "top_k", "block_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"MoEConfig.{name} must be a positive integer, got {value!r}")
        if self.top_k > self.num_experts:
            raise ValueError(
                f"MoEConfig.top_k ({self.top_k}) must not exceed num_experts ({self.num_experts})"
            )
        if not isinstance(self.num_shared_experts, int) or self.num_shared_experts < 0:
            raise ValueError(f"MoEConfig.num_shared_experts must be >= 0, got {self.num_shared_experts!r}")
        if self.shared_intermediate_size is not None and self.shared_intermediate_size < 1:
            raise ValueError("MoEConfig.shared_intermediate_size must be positive or None")
        if self.routing not in ROUTINGS:
            raise ValueError(f"MoEConfig.routing must be one of {ROUTINGS}, got {self.routing!r}")
        if not self.router_temperature > 0:
            raise ValueError(f"MoEConfig.router_temperature must be > 0, got {self.router_temperature!r}")
        if not self.router_noise_std >= 0:
            raise ValueError(f"MoEConfig.router_noise_std must be >= 0, got {self.router_noise_std!r}")
        if self.capacity_factor is not None and not self.capacity_factor > 0:
            raise ValueError(f"MoEConfig.capacity_factor must be > 0 or None, got {self.capacity_factor!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"MoEConfig.backend must be one of {BACKENDS}, got {self.backend!r}")
        self._check_routing_options()
        self._check_expert_options()

    def _check_routing_options(self) -> None:
        if (self.n_group is None) != (self.topk_group is None):
            raise ValueError("MoEConfig.n_group and MoEConfig.topk_group must be set together")
        groups, chosen = self.n_group, self.topk_group
        if groups is not None:
            _positive_int("n_group", groups)
            _positive_int("topk_group", chosen)
            if self.num_experts % groups:
                raise ValueError(f"MoEConfig.n_group ({groups}) must divide num_experts ({self.num_experts})")
            if chosen > groups:
                raise ValueError(f"MoEConfig.topk_group ({chosen}) must not exceed n_group ({groups})")
            if self.top_k > chosen * (self.num_experts // groups):
                raise ValueError("MoEConfig.top_k exceeds the experts in the topk_group chosen groups")
        if self.group_scoring not in GROUP_SCORINGS:
            raise ValueError(f"MoEConfig.group_scoring must be one of {GROUP_SCORINGS}, "
                             f"got {self.group_scoring!r}")
        if self.group_scoring == "top2_sum" and self.n_group and self.num_experts // self.n_group < 2:
            raise ValueError("MoEConfig.group_scoring='top2_sum' needs at least 2 experts per group")
        for name in ("routed_scaling_factor", "renormalize_p", "sparsemixer_jitter_eps"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < float("inf")):
                raise ValueError(f"MoEConfig.{name} must be a positive finite number, got {value!r}")
        if self.routing == "sparsemixer" and self.top_k != 2:
            raise ValueError("MoEConfig.routing='sparsemixer' (PhiMoE) always picks 2 experts: set top_k=2")
        if self.uses_routing_options and self.routing not in ("softmax_topk", "sigmoid_bias", "sigmoid_topk"):
            raise ValueError(f"routing options (groups, scaling, biases, Lp norm) need a top-k routing, "
                             f"not {self.routing!r}")
        if self.uses_routing_options and (self.router_temperature != 1.0 or self.router_noise_std > 0):
            raise ValueError("router_temperature and router_noise_std combine only with plain softmax_topk")
        if self.topk_before_scoring and (self.n_group or self.score_correction_bias):
            raise ValueError("topk_before_scoring selects on raw logits: no groups or score correction bias")
        if self.expert_capacity is not None:
            _positive_int("expert_capacity", self.expert_capacity)
            if self.capacity_factor is not None:
                raise ValueError("set MoEConfig.capacity_factor or MoEConfig.expert_capacity, not both")

    def _check_expert_options(self) -> None:
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"MoEConfig.hidden_act must be one of {ACTIVATIONS}, got {self.hidden_act!r}")
        if self.hidden_act == "swigluoai" and not self.is_act_and_mul:
            raise ValueError("MoEConfig.hidden_act='swigluoai' is a gated activation: is_act_and_mul=True")
        if not (self.swiglu_limit > 0 and self.swiglu_alpha > 0):
            raise ValueError("MoEConfig.swiglu_alpha and swiglu_limit must be positive")

    @property
    def uses_routing_options(self) -> bool:
        """True when routing needs `select_experts` rather than the plain softmax / sigmoid recipes."""
        return (self.n_group is not None or self.routed_scaling_factor != 1.0 or self.score_correction_bias
                or self.renormalize_p != 1.0 or self.topk_before_scoring)

    @property
    def plain_experts(self) -> bool:
        """True for the Mixtral expert (SwiGLU, no biases, weight on the output): the fused kernel's case."""
        return (self.hidden_act == "silu" and self.is_act_and_mul and not self.has_bias
                and not self.apply_router_weight_on_input)

    @property
    def shared_size(self) -> int:
        """FFN width of one shared expert."""
        return self.shared_intermediate_size or self.intermediate_size


@dataclass(frozen=True)
class FamilyMoEConfig(MoEConfig):
    """`MoEConfig` plus the routing and expert options of today's model families (issue 16).

    Names follow transformers / vLLM; defaults are MoEConfig's recipe, so FamilyMoEConfig(**fields)
    with no option set behaves exactly as MoEConfig(**fields). `moe_core.hf.load_block` builds one
    from a transformers config.
    """

    # --- routing options (transformers / vLLM names) ---
    n_group: int | None = None  # group-limited top-k: E experts in n_group groups (DeepSeek-V2/V3)...
    topk_group: int | None = None  # ...and a token picks its K experts inside its topk_group best groups
    group_scoring: str = "max"  # a group's score: its best expert ("max") or best two ("top2_sum")
    routed_scaling_factor: float = 1.0  # multiplies the routed weights after normalising (DeepSeek)
    score_correction_bias: bool = False  # add router.expert_bias to the scores, for selection only
    renormalize_p: float = 1.0  # renormalise by the Lp norm (DBRX moe_normalize_expert_weights)
    topk_before_scoring: bool = False  # top-k on logits, then softmax over the K (GPT-OSS, Granite)
    sparsemixer_jitter_eps: float = 0.01  # PhiMoE's router_jitter_noise: sparsemixer's mask threshold
    router_bias: bool = False  # the gate nn.Linear has a bias (GPT-OSS, Switch's router_bias)
    router_fp32: bool = False  # gate matmul in float32 whatever the weights' dtype (DeepSeek, Switch)
    apply_router_weight_on_input: bool = False  # scale the expert *input* by the weight (Llama-4)
    expert_capacity: int | None = None  # fixed slots per expert per sequence (Switch Transformers)
    # --- expert options ---
    hidden_act: str = "silu"  # see ACTIVATIONS; "swigluoai" is GPT-OSS's clamped SwiGLU
    is_act_and_mul: bool = True  # gated (act(gate) * up, w1 has 2F rows) or plain act(w1 x) (Switch)
    has_bias: bool = False  # experts carry biases b1 [E, 2F] and b2 [E, D] (GPT-OSS)
    swiglu_alpha: float = 1.702  # swigluoai: gate * sigmoid(alpha * gate), transformers' GPT-OSS value
    swiglu_limit: float = 7.0  # swigluoai: gate clamped above, up clamped to [-limit, limit]
    shared_expert_gate: bool = False  # shared output scaled by sigmoid(x . w) (Qwen2-MoE)


def _positive_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"MoEConfig.{name} must be a positive integer, got {value!r}")
