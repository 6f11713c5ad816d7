"""`moe_core.hf.load_block` against transformers' own sparse-MoE blocks (contract 7, issue 16).

For each family: build transformers' block from a tiny config, give it random weights, load its
state_dict through `load_block`, then compare forward outputs, router logits and selected experts
(fp32, 1e-5) and the gradients of the input and of every weight (1e-4), on the torch backend and on
the Triton kernel (the interpreter on a CPU). transformers==5.23 is the independent reference.
"""

from __future__ import annotations

import importlib

import pytest
import torch
import transformers

from moe_core.hf import SUPPORTED_FAMILIES, convert_state_dict, load_block

D, F, E, K = 16, 8, 8, 2
B, T = 2, 5  # 10 tokens


# What the router returns differs by family; each reader gives (router_logits, selected expert ids).
STANDARD = lambda out, block: (out[0], out[2])  # (router_logits, weights, indices)
LLAMA4 = lambda out, block: (out[1], torch.topk(out[1], 1, dim=-1).indices)  # (scores [T, E], logits)
DBRX = lambda out, block: (out, block.route_tokens_to_experts(out)[1])  # logits only
SWITCH = lambda out, block: (out[2].reshape(-1, 4), out[2].reshape(-1, 4).argmax(-1, keepdim=True))

ROUTED = dict(num_experts_per_tok=K)
DEEPSEEK = dict(hidden_size=D, moe_intermediate_size=F, n_routed_experts=E, **ROUTED)
# family -> (config class, its kwargs, block class in modeling_<family>.py, router attribute, reader)
FAMILIES = {
    "mixtral": ("MixtralConfig", dict(hidden_size=D, intermediate_size=F, num_local_experts=E, **ROUTED),
                "MixtralSparseMoeBlock", "gate", STANDARD),
    "deepseek_v3": ("DeepseekV3Config", dict(DEEPSEEK, n_group=4, topk_group=2, n_shared_experts=2,
                                             routed_scaling_factor=2.5, norm_topk_prob=True),
                    "DeepseekV3MoE", "gate", STANDARD),
    "qwen2_moe": ("Qwen2MoeConfig", dict(hidden_size=D, moe_intermediate_size=F, num_experts=E, **ROUTED,
                                         shared_expert_intermediate_size=12, norm_topk_prob=False),
                  "Qwen2MoeSparseMoeBlock", "gate", STANDARD),
    "qwen3_moe": ("Qwen3MoeConfig", dict(hidden_size=D, moe_intermediate_size=F, num_experts=E, **ROUTED,
                                         norm_topk_prob=True), "Qwen3MoeSparseMoeBlock", "gate", STANDARD),
    # swiglu_limit 1.5 (not 7): with these weights the clamps are then active.
    "gpt_oss": ("GptOssConfig", dict(hidden_size=D, intermediate_size=F, num_local_experts=E, **ROUTED,
                                     swiglu_limit=1.5), "GptOssMLP", "router", STANDARD),
    "olmoe": ("OlmoeConfig", dict(hidden_size=D, intermediate_size=F, num_experts=E, **ROUTED),
              "OlmoeSparseMoeBlock", "gate", STANDARD),
    "deepseek_v2": ("DeepseekV2Config", dict(DEEPSEEK, topk_method="group_limited_greedy", n_group=4,
                                             topk_group=2, n_shared_experts=1, routed_scaling_factor=16.0,
                                             num_attention_heads=4, num_key_value_heads=4),
                    "DeepseekV2Moe", "gate", STANDARD),
    "glm4_moe": ("Glm4MoeConfig", dict(DEEPSEEK, n_group=2, topk_group=1, n_shared_experts=1,
                                       routed_scaling_factor=1.5, norm_topk_prob=True),
                 "Glm4MoeMoE", "gate", STANDARD),
    "llama4": ("Llama4TextConfig", dict(hidden_size=D, intermediate_size=F, num_local_experts=E,
                                        num_experts_per_tok=1), "Llama4TextMoe", "router", LLAMA4),
    "dbrx": ("DbrxConfig", dict(d_model=D, ffn_config=dict(ffn_hidden_size=F, moe_num_experts=E, moe_top_k=K,
                                                           moe_normalize_expert_weights=2.0)),
             "DbrxFFN", "router", DBRX),
    "granitemoe": ("GraniteMoeConfig", dict(hidden_size=D, intermediate_size=F, num_local_experts=E,
                                            **ROUTED), "GraniteMoeMoE", "router", STANDARD),
    "jamba": ("JambaConfig", dict(hidden_size=D, intermediate_size=F, num_experts=E, **ROUTED),
              "JambaSparseMoeBlock", "router", STANDARD),
    # router_jitter_noise 0.3 (not 0.01) so sparsemixer's mask keeps more than one expert
    "phimoe": ("PhimoeConfig", dict(hidden_size=D, intermediate_size=F, num_local_experts=E, **ROUTED,
                                    router_jitter_noise=0.3), "PhimoeSparseMoeBlock", "router", STANDARD),
    # 5 tokens per sequence, 4 experts, capacity 1: at least one token per sequence is dropped
    "switch_transformers": ("SwitchTransformersConfig", dict(d_model=D, d_ff=F, num_experts=4,
                                                             expert_capacity=1, router_bias=True),
                            "SwitchTransformersSparseMLP", "router", SWITCH),
}


def _hf_block(family: str, seed: int = 0):
    config_name, kwargs, cls_name, router_attr, read_router = FAMILIES[family]
    config = getattr(transformers, config_name)(**kwargs)
    module = "llama4" if family == "llama4" else family
    cls = getattr(importlib.import_module(f"transformers.models.{module}.modeling_{module}"), cls_name)
    torch.manual_seed(seed)
    block = cls(config).float().eval()
    with torch.no_grad():
        for name, p in block.named_parameters():
            # Random weights (transformers leaves experts uninitialised, routers at zero); larger router
            # weights so routing is decisive, and biases that matter.
            p.copy_(torch.randn(p.shape) * (1.0 if "router" in name or "gate." in name else 0.4))
        for name, buf in block.named_buffers():
            if "e_score_correction_bias" in name:
                buf.copy_(torch.randn(buf.shape) * 0.3)
    return config, block, router_attr, read_router


def _run_hf(block, router_attr, read_router, x):
    captured = {}
    hook = getattr(block, router_attr).register_forward_hook(lambda m, i, o: captured.setdefault("out", o))
    out = block(x)
    hook.remove()
    out = out[0] if isinstance(out, tuple) else out
    logits, ids = read_router(captured["out"], block)
    tokens = x.shape[0] * x.shape[1]
    return out.reshape(tokens, -1), logits.reshape(tokens, -1), ids.reshape(tokens, -1)


def _config_dict(config):
    d = config.to_dict()
    d["model_type"] = config.model_type
    return d


def test_every_family_of_the_issue_is_supported():
    assert set(SUPPORTED_FAMILIES) >= {name if name != "llama4" else "llama4_text" for name in FAMILIES}


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_block_matches_transformers_forward_and_backward(family, backend):
    config, hf, router_attr, read_router = _hf_block(family)
    ours = load_block(_config_dict(config), hf.state_dict(), backend=backend)

    x = torch.randn(B, T, D, generator=torch.Generator().manual_seed(1))
    probe = torch.randn(B * T, D, generator=torch.Generator().manual_seed(2))
    x_hf, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    hf_out, hf_logits, hf_ids = _run_hf(hf, router_attr, read_router, x_hf)
    out = ours(x_ours)

    assert out.hidden_states.shape == x.shape
    torch.testing.assert_close(out.router_logits.reshape(hf_logits.shape), hf_logits, rtol=1e-5, atol=1e-5)
    assert torch.equal(out.topk_ids.sort(dim=-1).values, hf_ids.sort(dim=-1).values)
    assert hf_out.abs().max() > 0.1  # the comparison below is not of two zeros
    if family == "switch_transformers":
        assert 0 < out.num_dropped < B * T  # capacity drops some tokens, not all
    torch.testing.assert_close(out.hidden_states.reshape(-1, D), hf_out, rtol=1e-5, atol=1e-5)

    (hf_out * probe).sum().backward()
    (out.hidden_states.reshape(-1, D) * probe).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_hf.grad, rtol=1e-4, atol=1e-4)
    hf_grads = {n: p.grad for n, p in hf.named_parameters() if p.grad is not None}
    expected = convert_state_dict(_config_dict(config), hf_grads)
    checked = 0
    for name, p in ours.named_parameters():
        if name in expected:
            torch.testing.assert_close(p.grad, expected[name], rtol=1e-4, atol=1e-4, msg=name)
            checked += 1
    assert checked >= 3  # router, w1, w2 at least


def test_two_dimensional_input_and_multimodal_llama4_config():
    config, hf, router_attr, read_router = _hf_block("llama4")
    multimodal = {"model_type": "llama4", "text_config": _config_dict(config)}
    ours = load_block(multimodal, hf.state_dict())
    x = torch.randn(7, D, generator=torch.Generator().manual_seed(3))
    hf_out, _, _ = _run_hf(hf, router_attr, read_router, x[None])
    out = ours(x)
    assert out.hidden_states.shape == (7, D)
    torch.testing.assert_close(out.hidden_states, hf_out, rtol=1e-5, atol=1e-5)


def test_bad_inputs_are_clear_value_errors():
    config, hf, _, _ = _hf_block("mixtral")
    cfg, sd = _config_dict(config), hf.state_dict()
    with pytest.raises(ValueError, match="unsupported model_type 'gpt2'"):
        load_block({**cfg, "model_type": "gpt2"}, sd)
    with pytest.raises(ValueError, match=r"lacks \['experts.down_proj'\]"):
        load_block(cfg, {k: v for k, v in sd.items() if k != "experts.down_proj"})
    with pytest.raises(ValueError, match="unexpected tensors"):
        load_block(cfg, {**sd, "shared_expert_gate.weight": torch.zeros(1, D)})
    with pytest.raises(ValueError, match=r"experts\.w1: expected shape"):
        load_block({**cfg, "intermediate_size": F + 1}, sd)
    with pytest.raises(ValueError, match="lacks num_local_experts or num_experts"):
        load_block({k: v for k, v in cfg.items() if k != "num_local_experts"}, sd)
    with pytest.raises(ValueError, match="hidden_act 'tanh'"):
        load_block({**cfg, "hidden_act": "tanh"}, sd)


def test_phimoe_sparsemixer_refuses_training_mode():
    config, hf, _, _ = _hf_block("phimoe")
    block = load_block(_config_dict(config), hf.state_dict()).train()
    with pytest.raises(ValueError, match="eval mode"):
        block(torch.randn(3, D))


def test_deepseek_router_runs_in_fp32_for_bf16_weights_as_transformers_does():
    config, hf, router_attr, read_router = _hf_block("deepseek_v3")
    hf = hf.to(torch.bfloat16)
    hf.gate.e_score_correction_bias.data = hf.gate.e_score_correction_bias.float()
    ours = load_block(_config_dict(config), hf.state_dict())
    assert ours.experts.w1.dtype == torch.bfloat16 and ours.router.expert_bias.dtype == torch.float32
    assert torch.equal(ours.router.expert_bias, hf.gate.e_score_correction_bias)
    x = torch.randn(B, T, D, generator=torch.Generator().manual_seed(5)).to(torch.bfloat16)
    hf_out, hf_logits, hf_ids = _run_hf(hf, router_attr, read_router, x)
    out = ours(x)
    assert out.router_logits.dtype == torch.float32
    # Same fp32 matmul of the same bf16 values: the logits, hence the choices, are identical.
    torch.testing.assert_close(out.router_logits, hf_logits, rtol=0, atol=0)
    assert torch.equal(out.topk_ids.sort(dim=-1).values, hf_ids.sort(dim=-1).values)
    # bf16 experts: rounding differs between transformers' loop and moe_core's sorted segments.
    torch.testing.assert_close(out.hidden_states.reshape(-1, D).float(), hf_out.float(), rtol=3e-2, atol=3e-2)
