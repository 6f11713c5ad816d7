"""The shipped checkpoint (moe_core/weights/lm/): a real Hugging Face Mixtral that learned real text.

References independent of moe_core: transformers' MixtralForCausalLM on the same folder (equal logits
on held-out text), and zlib -9 on the same held-out bytes (the trained model must compress better).
"""

from __future__ import annotations

import json
import math
import zlib

import pytest
import torch
import torch.nn.functional as F

from moe_core.lm import SHIPPED, MoELM, load_tokenizer
from moe_core.lm.tokenizer import encode, token_bytes

pytestmark = pytest.mark.engine
FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "corpus_manifest.json",
    "heldout_sample.json",
    "loss_curve.json",
    "train_summary.json",
)


@pytest.fixture(scope="module")
def model():
    return MoELM.from_pretrained(SHIPPED)


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(SHIPPED)


@pytest.fixture(scope="module")
def sample():
    return json.loads((SHIPPED / "heldout_sample.json").read_text())


def test_folder_is_complete_and_small():
    sizes = {name: (SHIPPED / name).stat().st_size for name in FILES}
    assert sum(p.stat().st_size for p in SHIPPED.iterdir()) <= 30 * 2**20, sizes


@pytest.mark.parametrize("genre", ["code", "prose"])
def test_transformers_loads_it_as_mixtral_with_equal_logits(model, tok, sample, genre):
    from transformers import AutoModelForCausalLM

    hf, info = AutoModelForCausalLM.from_pretrained(SHIPPED, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    assert hf.config.model_type == "mixtral" and hf.dtype == torch.float32
    ids = torch.tensor([encode(tok, sample[genre][0]["text"])[:160]])
    with torch.no_grad():
        ours, theirs = model(ids), hf.eval()(ids, output_router_logits=True)
    torch.testing.assert_close(ours.logits, theirs.logits, atol=1e-4, rtol=0)
    for a, b in zip(ours.router_logits, theirs.router_logits, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


@pytest.mark.parametrize("genre", ["code", "prose"])
def test_it_compresses_held_out_text_better_than_zlib(model, tok, sample, genre):
    text = "".join(p["text"] for p in sample[genre])
    ids = torch.tensor([encode(tok, text)[:512]])
    with torch.no_grad():
        logits = model(ids).logits[0, :-1]
    nats = F.cross_entropy(logits, ids[0, 1:], reduction="sum").item()
    nbytes = sum(token_bytes(tok)[i] for i in ids[0, 1:].tolist())
    bpb = nats / math.log(2) / nbytes
    raw = tok.decode(ids[0, 1:].tolist(), skip_special_tokens=False).encode()
    zlib_bpb = 8 * len(zlib.compress(raw, 9)) / len(raw)
    assert bpb < zlib_bpb, (bpb, zlib_bpb)


def test_recorded_training_matches_the_folder(model):
    curve = json.loads((SHIPPED / "loss_curve.json").read_text())
    summary = json.loads((SHIPPED / "train_summary.json").read_text())
    assert curve[-1]["step"] == summary["steps"] and curve[-1]["tokens"] == summary["tokens"]
    assert curve[-1]["loss"] < curve[0]["loss"] - 2  # it learned: from ln(4096) = 8.3 nats down
    assert (summary["params_total"], summary["params_active"]) == model.num_params()
    assert set(summary["heldout_bits_per_byte"]) == {"code", "prose"}
    assert not json.loads((SHIPPED / "corpus_manifest.json").read_text())["smoke_slice"]


def test_experts_are_all_used_on_held_out_text(model, tok, sample):
    """Trained with the Switch loss, no expert is dead on real text (each gets > 1/10 of a fair share)."""
    text = "".join(p["text"] for g in ("code", "prose") for p in sample[g])
    ids = torch.tensor([encode(tok, text)[:1024]])
    with torch.no_grad():
        out = model(ids)
    E = model.config.num_local_experts
    for layer in out.topk_ids:
        share = torch.bincount(layer.flatten(), minlength=E).float() / layer.numel()
        assert share.min() > 0.1 / E, share
