"""`moe_core.lm.MoELM` is Mixtral: transformers loads what it saves and computes the same logits.

The reference is Hugging Face `transformers`' own `MixtralForCausalLM` (pinned 5.23), built from the
folder `MoELM.save_pretrained` writes; it shares no code with `moe_core`. Tiny random models keep
each test well under a second of compute.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from moe_core.lm import LMConfig, MoELM

pytestmark = pytest.mark.engine

TINY = LMConfig(
    vocab_size=97,
    hidden_size=32,
    intermediate_size=24,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=4,
    num_local_experts=4,
    num_experts_per_tok=2,
)
# fp32 end to end; the two models order their sums differently, so equal up to rounding, not bits.
ATOL = 1e-4


def tiny_model(seed: int = 0, std: float = 0.3, **overrides) -> MoELM:
    """A random tiny MoELM; a wide init (std 0.3) so routing and argmax are far from degenerate."""
    torch.manual_seed(seed)
    model = MoELM(LMConfig(**{**TINY.__dict__, **overrides}))
    model.reset_parameters(std)
    return model.eval()


def load_hf(path):
    from transformers import AutoModelForCausalLM

    hf, info = AutoModelForCausalLM.from_pretrained(path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    return hf.eval()


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"tie_word_embeddings": False},
        {"num_key_value_heads": 2},
        {"num_local_experts": 1, "num_experts_per_tok": 1},
    ],
    ids=["tied", "untied", "grouped-kv", "dense"],
)
def test_random_tiny_model_matches_transformers(tmp_path, overrides):
    model = tiny_model(**overrides)
    model.save_pretrained(tmp_path)
    hf = load_hf(tmp_path)
    assert hf.config.model_type == "mixtral" and type(hf).__name__ == "MixtralForCausalLM"
    ids = torch.randint(0, TINY.vocab_size, (2, 19), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model(ids), hf(ids, output_router_logits=True)
    torch.testing.assert_close(ours.logits, theirs.logits, atol=ATOL, rtol=0)
    assert len(ours.router_logits) == len(theirs.router_logits) == TINY.num_hidden_layers
    for a, b in zip(ours.router_logits, theirs.router_logits, strict=True):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)


def test_output_shapes_and_checkpoint_names(tmp_path):
    model = tiny_model()
    out = model(torch.zeros(3, 5, dtype=torch.long))
    assert out.logits.shape == (3, 5, TINY.vocab_size)
    assert isinstance(out.router_logits, tuple) and len(out.router_logits) == TINY.num_hidden_layers
    assert all(r.shape == (15, TINY.num_local_experts) for r in out.router_logits)
    model.save_pretrained(tmp_path)
    names = set(load_file(tmp_path / "model.safetensors"))
    # Mixtral's checkpoint names, one matrix per expert: what every Mixtral loader reads.
    assert "model.layers.1.block_sparse_moe.experts.3.w3.weight" in names
    assert "model.layers.0.block_sparse_moe.gate.weight" in names
    assert "lm_head.weight" not in names  # tied to model.embed_tokens.weight
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "mixtral"


def test_save_load_round_trip_is_exact(tmp_path):
    model = tiny_model(seed=3, tie_word_embeddings=False)
    model.save_pretrained(tmp_path)
    loaded = MoELM.from_pretrained(tmp_path)
    assert loaded.config == model.config
    ours = {k: v for k, v in model.state_dict().items()}
    for name, value in loaded.state_dict().items():
        assert torch.equal(value, ours[name]), name
    ids = torch.randint(0, TINY.vocab_size, (1, 11))
    assert torch.equal(model(ids).logits, loaded(ids).logits)


def test_half_precision_storage_loads_as_float32_in_both(tmp_path):
    model = tiny_model(seed=4)
    model.save_pretrained(tmp_path, dtype=torch.float16)
    stored = load_file(tmp_path / "model.safetensors")
    assert all(t.dtype == torch.float16 for t in stored.values())
    loaded = MoELM.from_pretrained(tmp_path)
    w = loaded.layers[0].mlp.experts.w1
    assert w.dtype == torch.float32
    torch.testing.assert_close(w, model.layers[0].mlp.experts.w1.half().float(), atol=0, rtol=0)
    hf = load_hf(tmp_path)
    assert hf.dtype == torch.float32
    ids = torch.randint(0, TINY.vocab_size, (1, 13))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, hf(ids).logits, atol=ATOL, rtol=0)


def test_loads_transformers_fused_expert_layout(tmp_path):
    """A folder written with transformers' in-memory names (gate_up_proj / down_proj) loads too."""
    model = tiny_model(seed=5)
    model.save_pretrained(tmp_path)
    hf = load_hf(tmp_path)
    fused = {k: v.contiguous() for k, v in hf.state_dict().items() if k != "lm_head.weight"}
    assert any(k.endswith("experts.gate_up_proj") for k in fused)
    save_file(fused, str(tmp_path / "model.safetensors"))
    again = MoELM.from_pretrained(tmp_path)
    ids = torch.randint(0, TINY.vocab_size, (2, 7))
    torch.testing.assert_close(again(ids).logits, model(ids).logits, atol=0, rtol=0)


def test_kv_cache_gives_the_full_forward_logits():
    model = tiny_model(seed=6, num_key_value_heads=2)
    ids = torch.randint(0, TINY.vocab_size, (1, 12), generator=torch.Generator().manual_seed(2))
    full = model(ids).logits[0]
    cache = model.new_cache()
    steps = [model(ids[:, :5], cache=cache).logits[0]]  # prefill 5, then 2 tokens, then 1 at a time
    steps.append(model(ids[:, 5:7], cache=cache, start_pos=5).logits[0])
    steps += [model(ids[:, t : t + 1], cache=cache, start_pos=t).logits[0] for t in range(7, 12)]
    torch.testing.assert_close(torch.cat(steps), full, atol=1e-5, rtol=0)


def test_greedy_generation_with_cache_equals_without_and_transformers(tmp_path):
    model = tiny_model(seed=7)
    prompt = [5, 17, 3, 42]
    cached = list(model.generate(prompt, max_new_tokens=24))
    uncached = list(model.generate(prompt, max_new_tokens=24, use_cache=False))
    assert cached == uncached
    assert len(set(cached)) > 3  # a real sequence, not one token repeated
    model.save_pretrained(tmp_path)
    hf = load_hf(tmp_path)
    out = hf.generate(
        torch.tensor([prompt]), max_new_tokens=24, do_sample=False, eos_token_id=None, pad_token_id=0
    )
    assert out[0, len(prompt) :].tolist() == cached


def test_generate_streams_samples_reproducibly_and_stops_at_eos():
    model = tiny_model(seed=8)
    a = list(model.generate([1, 2, 3], max_new_tokens=30, temperature=1.0, top_k=20, seed=11))
    b = list(model.generate([1, 2, 3], max_new_tokens=30, temperature=1.0, top_k=20, seed=11))
    assert a == b and len(a) == 30
    greedy = list(model.generate([1, 2, 3], max_new_tokens=30))
    stop = greedy[4]
    stopped = list(model.generate([1, 2, 3], max_new_tokens=30, eos_token_id=stop))
    assert stopped[-1] == stop and len(stopped) == greedy.index(stop) + 1
    with pytest.raises(ValueError, match="prompt"):
        next(model.generate([], max_new_tokens=3))


def test_param_count_matches_hand_count():
    cfg = TINY
    model = tiny_model()
    total, active = model.num_params()
    D, F, E, K, L, V = (
        cfg.hidden_size,
        cfg.intermediate_size,
        cfg.num_local_experts,
        cfg.num_experts_per_tok,
        cfg.num_hidden_layers,
        cfg.vocab_size,
    )
    per_layer_attn = 4 * D * D + 2 * D  # q, k, v, o and two RMSNorm weights
    assert total == V * D + D + L * (per_layer_attn + E * D + E * 3 * D * F)
    assert total - active == L * (E - K) * 3 * D * F


def test_rejects_a_non_mixtral_config(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "model_type": "llama"}))
    with pytest.raises(ValueError, match="mixtral"):
        MoELM.from_pretrained(tmp_path)


def test_aux_loss_is_transformers_switch_loss_per_layer_averaged():
    from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

    model = tiny_model(seed=9).train()
    out = model(torch.randint(0, TINY.vocab_size, (2, 16)))
    per_layer = [
        load_balancing_loss_func((r,), TINY.num_local_experts, TINY.num_experts_per_tok)
        for r in out.router_logits
    ]
    torch.testing.assert_close(out.aux_loss, torch.stack(per_layer).mean(), atol=1e-6, rtol=0)
    out.aux_loss.backward()  # the Switch loss trains the gates (through P_e), nothing else
    assert model.layers[0].mlp.router.gate.weight.grad.abs().sum() > 0
    assert model.embed_tokens.weight.grad is not None
