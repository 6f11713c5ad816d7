"""Routing and expert options added for the transformers families (issue 16), and the bugs found
while adding them. Every expected value is a plain-torch formula written out here, independent of
moe_core's code paths."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moe_core import (
    FamilyMoEConfig,
    MoEConfig,
    SparseMoE,
    fused_moe,
    moe_experts,
    select_experts,
    sigmoid_bias_topk,
)

# --- issue 16 bugs ----------------------------------------------------------------------------


def _expert_inputs(dtype, seed=0, num_tokens=8, hidden=32, ffn=32, num_experts=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(num_tokens, hidden, generator=g)
    w1 = torch.randn(num_experts, 2 * ffn, hidden, generator=g) / hidden**0.5
    w2 = torch.randn(num_experts, hidden, ffn, generator=g) / ffn**0.5
    logits = torch.randn(num_tokens, num_experts, generator=g)
    return x.to(dtype), w1.to(dtype), w2.to(dtype), logits


def test_triton_bf16_matches_torch_backend():
    # Triton's CPU interpreter has no bf16 tl.dot: it used to return values near 1e10, silently.
    x, w1, w2, logits = _expert_inputs(torch.bfloat16)
    expected = fused_moe(x.float(), w1.float(), w2.float(), logits, 2, backend="torch")
    out = fused_moe(x, w1, w2, logits, 2, backend="triton")
    assert out.dtype == torch.bfloat16
    # bf16 inputs, fp32 accumulation, one bf16 rounding of the output: ~3 significant digits.
    torch.testing.assert_close(out.float(), expected, rtol=2e-2, atol=2e-2)


def test_triton_bf16_backward_matches_fp32_autograd():
    x, w1, w2, logits = _expert_inputs(torch.bfloat16, seed=1)
    grads = {}
    for name, dtype, backend in (("fp32", torch.float32, "torch"), ("bf16", torch.bfloat16, "triton")):
        leaves = [t.to(dtype).requires_grad_() for t in (x, w1, w2)]
        fused_moe(*leaves, logits, 2, backend=backend).float().square().sum().backward()
        grads[name] = [t.grad.float() for t in leaves]
    for got, want in zip(grads["bf16"], grads["fp32"], strict=True):
        assert got.abs().max() < 1e3  # the interpreter's bf16 failure mode was ~1e10
        # bf16 output and gradients: two roundings of 2^-8 relative each.
        torch.testing.assert_close(got, want, rtol=3e-2, atol=3e-2 * want.abs().max().item())


def test_triton_float64_is_refused_not_wrong():
    # float64 used to come back as zeros; the kernel computes in fp32, so it now refuses.
    x, w1, w2, logits = _expert_inputs(torch.float64)
    with pytest.raises(ValueError, match="float64"):
        fused_moe(x, w1, w2, logits, 2, backend="triton")


def test_sigmoid_bias_topk_weights_are_finite_when_scores_underflow():
    # sigmoid(-200) == 0 in float32: 0/0 gave NaN; transformers adds 1e-20 to the denominator.
    logits = torch.full((3, 4), -200.0)
    routing = sigmoid_bias_topk(logits, 2, torch.zeros(4))
    assert torch.isfinite(routing.topk_weights).all()
    torch.testing.assert_close(routing.topk_weights, torch.zeros(3, 2), rtol=0, atol=0)


@pytest.mark.parametrize("bad_id", [4, 7, -2])
@pytest.mark.parametrize("backend", ["torch", "loop", "triton"])
def test_expert_id_out_of_range_is_refused(bad_id, backend):
    x, w1, w2, _ = _expert_inputs(torch.float32)
    ids = torch.tensor([[0, 1]] * 8)
    ids[3, 1] = bad_id
    with pytest.raises(ValueError, match="topk_ids"):
        moe_experts(x, w1, w2, torch.full((8, 2), 0.5), ids, backend=backend)


def test_minus_one_still_marks_a_dropped_slot():
    x, w1, w2, _ = _expert_inputs(torch.float32)
    ids = torch.tensor([[0, -1]] * 8)
    weights = torch.full((8, 2), 0.5)
    out = moe_experts(x, w1, w2, weights, ids, backend="torch")
    gate, up = (x @ w1[0].t()).chunk(2, dim=-1)
    expected = 0.5 * (torch.nn.functional.silu(gate) * up) @ w2[0].t()
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


# --- routing options vs a per-token float64 reference (hypothesis) ---------------------------------


def _reference_routing(logits, top_k, opts):
    """Token by token in float64 Python, from the definitions (DeepSeek-V2/V3, GPT-OSS, DBRX)."""
    ids_out, weights_out = [], []
    for row in logits.double().tolist():
        num_experts = len(row)
        if opts["scoring_func"] == "softmax":
            z = sum(math.exp(v - max(row)) for v in row)
            scores = [math.exp(v - max(row)) / z for v in row]
        else:
            scores = [1 / (1 + math.exp(-v)) for v in row]
        if opts["topk_before_scoring"]:
            ids = sorted(range(num_experts), key=lambda e: -row[e])[:top_k]
            top = [row[e] for e in ids]
            if opts["scoring_func"] == "softmax":
                z = sum(math.exp(v - max(top)) for v in top)
                weights = [math.exp(v - max(top)) / z for v in top]
            else:
                weights = [1 / (1 + math.exp(-v)) for v in top]
        else:
            bias = opts["bias"] or [0.0] * num_experts
            choice = [s + b for s, b in zip(scores, bias, strict=True)]
            eligible = set(range(num_experts))
            if opts["n_group"]:
                size = num_experts // opts["n_group"]
                groups = [sorted(choice[g * size : (g + 1) * size], reverse=True)
                          for g in range(opts["n_group"])]
                value = [grp[0] if opts["group_scoring"] == "max" else grp[0] + grp[1] for grp in groups]
                best = sorted(range(opts["n_group"]), key=lambda g: -value[g])[: opts["topk_group"]]
                eligible = {e for e in range(num_experts) if e // size in best}
            ids = sorted(eligible, key=lambda e: -choice[e])[:top_k]
            weights = [scores[e] for e in ids]
        if opts["renormalize"]:
            norm = sum(abs(w) ** opts["p"] for w in weights) ** (1 / opts["p"])
            weights = [w / (norm + 1e-20) for w in weights]
        weights = [w * opts["scale"] for w in weights]
        order = sorted(range(top_k), key=lambda i: ids[i])
        ids_out.append([ids[i] for i in order])
        weights_out.append([weights[i] for i in order])
    return torch.tensor(ids_out, dtype=torch.long), torch.tensor(weights_out, dtype=torch.float64)


def _options_are_valid(num_experts, top_k, opts):
    if not 1 <= top_k <= num_experts:
        return False
    if opts["topk_before_scoring"] and (opts["bias"] is not None or opts["n_group"]):
        return False
    if opts["n_group"]:
        groups, chosen = opts["n_group"], opts["topk_group"]
        if num_experts % groups or not 1 <= chosen <= groups or top_k > chosen * (num_experts // groups):
            return False
        if opts["group_scoring"] == "top2_sum" and num_experts // groups < 2:
            return False
    return True


@st.composite
def routing_cases(draw):
    num_tokens, num_experts = draw(st.integers(0, 6)), draw(st.integers(1, 12))
    top_k = draw(st.integers(1, num_experts + 1))
    n_group = draw(st.one_of(st.none(), st.integers(1, 6)))
    opts = dict(
        scoring_func=draw(st.sampled_from(["softmax", "sigmoid"])),
        renormalize=draw(st.booleans()),
        p=draw(st.sampled_from([1.0, 1.0, 2.0, 0.5, 3.0])),
        topk_before_scoring=draw(st.booleans()),
        n_group=n_group,
        topk_group=draw(st.integers(1, 6)) if n_group else None,
        group_scoring=draw(st.sampled_from(["max", "top2_sum"])),
        scale=draw(st.sampled_from([1.0, 2.5, 16.0])),
        bias=None,
    )
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    if draw(st.booleans()):
        opts["bias"] = (torch.randn(num_experts, generator=g) * 0.3).tolist()
    logits = torch.randn(num_tokens, num_experts, generator=g) * draw(st.sampled_from([0.3, 2.0, 8.0]))
    return logits, top_k, opts


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(routing_cases())
def test_select_experts_fuzz_matches_reference_or_refuses(case):
    logits, top_k, opts = case
    kwargs = dict(
        scoring_func=opts["scoring_func"], renormalize=opts["renormalize"], renormalize_p=opts["p"],
        topk_before_scoring=opts["topk_before_scoring"], n_group=opts["n_group"],
        topk_group=opts["topk_group"], group_scoring=opts["group_scoring"],
        routed_scaling_factor=opts["scale"],
        e_score_correction_bias=None if opts["bias"] is None else torch.tensor(opts["bias"]),
    )  # fmt: skip
    if not _options_are_valid(logits.shape[1], top_k, opts):
        with pytest.raises(ValueError):
            select_experts(logits, top_k, **kwargs)
        return
    routing = select_experts(logits, top_k, **kwargs)
    ids, weights = _reference_routing(logits, top_k, opts)
    order = routing.topk_ids.argsort(dim=-1)
    assert torch.equal(routing.topk_ids.gather(1, order), ids.reshape(routing.topk_ids.shape))
    # float32 scores against float64: relative 1e-5 of weights that may be scaled by 16.
    torch.testing.assert_close(
        routing.topk_weights.gather(1, order).double(), weights.reshape(routing.topk_weights.shape),
        rtol=1e-5, atol=1e-6,
    )


# --- expert options vs a dense per-token reference (hypothesis) -----------------------------------


def _dense_expert(x_D, w1, w2, b1, b2, act, gated, alpha, limit):
    """One expert on one token, written out from the definitions (float64)."""
    h = w1 @ x_D + (0 if b1 is None else b1)
    if gated:
        gate, up = h.chunk(2)
        if act == "swigluoai":
            gate, up = gate.clamp(max=limit), up.clamp(-limit, limit)
            a = (up + 1) * gate * torch.sigmoid(alpha * gate)
        else:
            a = {"silu": lambda t: t * torch.sigmoid(t), "relu": torch.relu,
                 "gelu": lambda t: 0.5 * t * (1 + torch.erf(t / math.sqrt(2)))}[act](gate) * up
    else:
        a = {"silu": lambda t: t * torch.sigmoid(t), "relu": torch.relu,
             "gelu": lambda t: 0.5 * t * (1 + torch.erf(t / math.sqrt(2)))}[act](h)
    return w2 @ a + (0 if b2 is None else b2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2**16), st.integers(0, 9), st.integers(1, 5), st.integers(1, 9), st.integers(1, 4),
    st.sampled_from(["silu", "relu", "gelu", "swigluoai"]), st.booleans(), st.booleans(), st.booleans(),
    st.sampled_from(["torch", "loop", "triton"]),
)
def test_expert_options_fuzz_match_dense_reference(seed, num_tokens, hidden, ffn, num_experts, act, gated,
                                                   has_bias, on_input, backend):
    g = torch.Generator().manual_seed(seed)
    top_k = min(2, num_experts)
    rows = 2 * ffn if gated else ffn
    x = torch.randn(num_tokens, hidden, generator=g)
    w1 = torch.randn(num_experts, rows, hidden, generator=g)
    w2 = torch.randn(num_experts, hidden, ffn, generator=g)
    b1 = torch.randn(num_experts, rows, generator=g) if has_bias else None
    b2 = torch.randn(num_experts, hidden, generator=g) if has_bias else None
    rows_of_ids = [torch.randperm(num_experts, generator=g)[:top_k] for _ in range(num_tokens)]
    ids = torch.stack(rows_of_ids) if rows_of_ids else torch.zeros(0, top_k, dtype=torch.long)
    if num_tokens:
        ids[0, -1] = -1  # a dropped slot contributes nothing
    weights = torch.rand(num_tokens, top_k, generator=g)
    kwargs = dict(hidden_act=act, is_act_and_mul=gated, w1_bias=b1, w2_bias=b2,
                  apply_router_weight_on_input=on_input, swiglu_alpha=1.702, swiglu_limit=1.0)
    if act == "swigluoai" and not gated:
        return  # not an activation of a plain FFN; MoEConfig refuses it
    out = moe_experts(x, w1, w2, weights, ids, backend=backend, **kwargs)
    expected = torch.zeros(num_tokens, hidden, dtype=torch.float64)
    d = lambda t: None if t is None else t.double()
    for t in range(num_tokens):
        for k in range(top_k):
            e = int(ids[t, k])
            if e < 0:
                continue
            w = float(weights[t, k])
            x_in = x[t].double() * (w if on_input else 1.0)
            y = _dense_expert(x_in, w1[e].double(), w2[e].double(), d(None if b1 is None else b1[e]),
                              d(None if b2 is None else b2[e]), act, gated, 1.702, 1.0)
            expected[t] += y if on_input else w * y
    torch.testing.assert_close(out.double(), expected, rtol=1e-4, atol=1e-4)


# --- FamilyMoEConfig -----------------------------------------------------------------------------


def test_moe_config_fields_are_unchanged_so_saved_configs_still_compare_equal():
    # router_demo's checkpoint compares asdict(MoEConfig()) with the saved one: new options must
    # not become MoEConfig fields.
    from dataclasses import asdict

    assert list(asdict(MoEConfig())) == [
        "hidden_size", "intermediate_size", "num_experts", "top_k", "num_shared_experts",
        "shared_intermediate_size", "routing", "renormalize", "router_temperature", "router_noise_std",
        "capacity_factor", "backend", "block_size",
    ]
    assert FamilyMoEConfig().n_group is None and MoEConfig().n_group is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (dict(n_group=3), "n_group"),  # without topk_group
        (dict(n_group=3, topk_group=1), "n_group"),  # 3 does not divide 8
        (dict(n_group=4, topk_group=5), "topk_group"),
        (dict(n_group=8, topk_group=1, top_k=2), "top_k"),
        (dict(n_group=8, topk_group=2, group_scoring="top2_sum"), "top2_sum"),
        (dict(group_scoring="mean"), "group_scoring"),
        (dict(routed_scaling_factor=0.0), "routed_scaling_factor"),
        (dict(renormalize_p=float("inf")), "renormalize_p"),
        (dict(routing="sparsemixer", top_k=1), "sparsemixer"),
        (dict(routing="expert_choice", routed_scaling_factor=2.0), "expert_choice"),
        (dict(router_temperature=2.0, topk_before_scoring=True), "router_temperature"),
        (dict(topk_before_scoring=True, score_correction_bias=True), "topk_before_scoring"),
        (dict(expert_capacity=0), "expert_capacity"),
        (dict(expert_capacity=4, capacity_factor=1.0), "expert_capacity"),
        (dict(hidden_act="tanh"), "hidden_act"),
        (dict(hidden_act="swigluoai", is_act_and_mul=False), "swigluoai"),
    ],
)
def test_family_config_validation_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        FamilyMoEConfig(**{"num_experts": 8, "top_k": 2, **overrides})


def test_expert_capacity_is_counted_per_sequence():
    # Two sequences of 4 tokens, all on expert 1, capacity 2: the first two of *each* sequence stay
    # (Switch Transformers' cumsum over each sequence), not the first two of the batch.
    layer = SparseMoE(FamilyMoEConfig(hidden_size=4, intermediate_size=4, num_experts=2, top_k=1,
                                      renormalize=False, expert_capacity=2))
    with torch.no_grad():
        layer.router.gate.weight.zero_()
        layer.router.gate.weight[1] = 1.0
    out = layer(torch.ones(2, 4, 4))
    keep = out.capacity.keep.reshape(2, 4)
    assert keep.tolist() == [[True, True, False, False]] * 2
    assert out.hidden_states[:, 2:].abs().sum() == 0 and out.hidden_states[:, :2].abs().sum() > 0


def test_shared_expert_gate_scales_the_shared_output_by_a_sigmoid():
    cfg = FamilyMoEConfig(hidden_size=8, intermediate_size=4, num_experts=4, top_k=2, num_shared_experts=1,
                          shared_expert_gate=True)
    layer = SparseMoE(cfg)
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    plain = SparseMoE(MoEConfig(hidden_size=8, intermediate_size=4, num_experts=4, top_k=2,
                                num_shared_experts=1))
    plain.load_state_dict({k: v for k, v in layer.state_dict().items() if k != "shared_expert_gate.weight"})
    shared = layer.shared_experts(x)
    gate = torch.sigmoid(x @ layer.shared_expert_gate.weight.t())
    expected = plain(x).hidden_states - shared + gate * shared
    torch.testing.assert_close(layer(x).hidden_states, expected, rtol=1e-5, atol=1e-6)
