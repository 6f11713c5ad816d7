"""Read and write `MoELM` as a Hugging Face Mixtral checkpoint folder (config.json + model.safetensors).

The file uses the names Mixtral checkpoints have always used, which transformers 5 still writes
from `save_pretrained` and folds into its fused experts on load (its `conversion_mapping`):

    moe_core (stacked)                                  Mixtral checkpoint (per expert e)
    layers.i.mlp.router.gate.weight    [E, D]           model.layers.i.block_sparse_moe.gate.weight
    layers.i.mlp.experts.w1[e, :F]     [F, D]  gate     model.layers.i.block_sparse_moe.experts.e.w1.weight
    layers.i.mlp.experts.w1[e, F:]     [F, D]  up       model.layers.i.block_sparse_moe.experts.e.w3.weight
    layers.i.mlp.experts.w2[e]         [D, F]  down     model.layers.i.block_sparse_moe.experts.e.w2.weight

Attention, norms and embeddings keep their names under `model.`; `lm_head.weight` is omitted when
the embeddings are tied. Loading also accepts transformers' fused in-memory layout
(`mlp.experts.gate_up_proj [E, 2F, D]`, `mlp.experts.down_proj [E, D, F]`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

MOE = "block_sparse_moe"


def to_mixtral_state_dict(model) -> dict[str, torch.Tensor]:
    """moe_core names and stacked experts -> Mixtral checkpoint names, one tensor per expert matrix."""
    cfg = model.config
    F_ = cfg.intermediate_size
    out: dict[str, torch.Tensor] = {}
    for name, t in model.state_dict().items():
        t = t.detach()
        if name.endswith("router.expert_bias"):
            continue  # a DeepSeek-V3 selection bias buffer, unused by softmax top-k routing (all zeros)
        if name == "lm_head.weight":
            if not cfg.tie_word_embeddings:
                out[name] = t
            continue
        m = re.fullmatch(r"layers\.(\d+)\.mlp\.(.+)", name)
        if m is None:
            out["model." + name] = t
            continue
        prefix, rest = f"model.layers.{m[1]}.{MOE}", m[2]
        if rest == "router.gate.weight":
            out[f"{prefix}.gate.weight"] = t
        elif rest == "experts.w1":
            for e in range(t.shape[0]):
                out[f"{prefix}.experts.{e}.w1.weight"] = t[e, :F_]
                out[f"{prefix}.experts.{e}.w3.weight"] = t[e, F_:]
        elif rest == "experts.w2":
            for e in range(t.shape[0]):
                out[f"{prefix}.experts.{e}.w2.weight"] = t[e]
        else:
            raise ValueError(f"no Mixtral name for parameter {name!r}")
    return {k: v.contiguous().clone() for k, v in out.items()}


def from_mixtral_state_dict(sd: dict[str, torch.Tensor], num_layers: int, num_experts: int) -> dict:
    """Mixtral checkpoint names (per-expert or fused) -> moe_core's state dict (without buffers)."""
    sd = dict(sd)
    out: dict[str, torch.Tensor] = {}
    for i in range(num_layers):
        for block in (MOE, "mlp"):
            gate = sd.pop(f"model.layers.{i}.{block}.gate.weight", None)
            if gate is not None:
                out[f"layers.{i}.mlp.router.gate.weight"] = gate
        p = f"model.layers.{i}.{MOE}.experts"
        if f"{p}.0.w1.weight" in sd:
            w1 = [
                torch.cat((sd.pop(f"{p}.{e}.w1.weight"), sd.pop(f"{p}.{e}.w3.weight")))
                for e in range(num_experts)
            ]
            out[f"layers.{i}.mlp.experts.w1"] = torch.stack(w1)  # [E, 2F, D]
            out[f"layers.{i}.mlp.experts.w2"] = torch.stack(
                [sd.pop(f"{p}.{e}.w2.weight") for e in range(num_experts)]
            )
        else:
            fused = f"model.layers.{i}.mlp.experts"
            out[f"layers.{i}.mlp.experts.w1"] = sd.pop(f"{fused}.gate_up_proj")
            out[f"layers.{i}.mlp.experts.w2"] = sd.pop(f"{fused}.down_proj")
    for name, t in sd.items():
        out[name.removeprefix("model.")] = t
    return out


def save_pretrained(model, path, dtype: torch.dtype = torch.float32) -> None:
    """Write config.json and model.safetensors (tensors stored as `dtype`) into the folder `path`."""
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"storage dtype must be float32, float16 or bfloat16, got {dtype}")
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    # NOTE: config.json keeps "dtype": "float32" even when the tensors are stored as float16: it is the
    # dtype to *run* in, so `AutoModelForCausalLM.from_pretrained(path)` upcasts on load and its logits
    # match MoELM's (which always computes in float32) instead of differing by float16 rounding.
    hf = model.config.to_hf_dict()
    (path / "config.json").write_text(json.dumps(hf, indent=2, sort_keys=True) + "\n")
    tensors = {k: v.to(dtype) for k, v in sorted(to_mixtral_state_dict(model).items())}
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})


def load_pretrained(cls, path):
    """Build `cls` (MoELM) from a Mixtral folder; weights are cast to float32 whatever was stored."""
    from safetensors.torch import load_file

    from moe_core.lm.model import LMConfig

    path = Path(path)
    config = LMConfig.from_hf_dict(json.loads((path / "config.json").read_text()))
    raw = load_file(str(path / "model.safetensors"))
    sd = from_mixtral_state_dict(
        {k: v.float() for k, v in raw.items()}, config.num_hidden_layers, config.num_local_experts
    )
    if config.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    model = cls(config)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [m for m in missing if not m.endswith("router.expert_bias") and m != "lm_head.weight"]
    if missing or unexpected:
        raise ValueError(f"checkpoint at {path} does not fit: missing {missing}, unexpected {unexpected}")
    return model.eval()
