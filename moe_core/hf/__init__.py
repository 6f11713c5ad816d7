"""transformers' sparse-MoE blocks, run through moe_core (DESIGN.md contract 7).

    block = load_block(config, state_dict)         # config.json as a mapping, the block's tensors
    out = block(hidden_states)                      # [T, D] or [B, T, D]
    out.hidden_states, out.router_logits            # as transformers' block computes them

`config` is a model's Hugging Face `config.json` as a mapping (for multimodal models such as
Llama-4, the whole config or its `text_config`); `state_dict` holds one sparse-MoE block's tensors
under the names transformers uses inside that block (`gate.weight`, `experts.gate_up_proj`,
`shared_expert_gate.weight`, ...). The returned module is a `SparseMoE` built from a
`FamilyMoEConfig`: moe_core's own router, dispatch and experts (torch or Triton backend), not
transformers' code. Weight names and layouts follow transformers==5.23 (its per-expert `nn.Linear`
lists of older versions became stacked `gate_up_proj`/`down_proj` tensors in 5.x).

The module reproduces the block in eval mode. Training-time input jitter (Mixtral's
`router_jitter_noise`, DBRX's `moe_jitter_eps`, Switch's `router_jitter_noise`, PhiMoE's
`input_jitter_noise`) is not applied, and PhiMoE's sparsemixer refuses training mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from moe_core.hf.families import FAMILIES, BlockSpec
from moe_core.layer import SparseMoE

SUPPORTED_FAMILIES = tuple(FAMILIES)


def text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The language model's config: `text_config` of a multimodal config.json, else the config itself."""
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a mapping (a parsed config.json), got {type(config).__name__}")
    inner = config.get("text_config")
    return inner if isinstance(inner, Mapping) else config


def block_spec(config: Mapping[str, Any], backend: str = "torch") -> BlockSpec:
    """The FamilyMoEConfig (and weight converter) of a config's sparse-MoE block."""
    cfg = text_config(config)
    model_type = cfg.get("model_type") or config.get("model_type")
    if model_type == "llama4":
        model_type = "llama4_text"
    if model_type not in FAMILIES:
        raise ValueError(
            f"unsupported model_type {model_type!r}; supported: {', '.join(sorted(SUPPORTED_FAMILIES))}"
        )
    return FAMILIES[model_type](cfg, backend)


def load_block(
    config: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor], backend: str = "torch"
) -> nn.Module:
    """A moe_core `SparseMoE` equal to transformers' sparse-MoE block with these weights (eval mode).

    Raises ValueError for an unknown family, a missing or unexpected tensor, or a wrong shape.
    """
    spec = block_spec(config, backend)
    block = SparseMoE(spec.config)
    converted = spec.convert(dict(state_dict))
    expected = block.state_dict()
    converted.setdefault("router.expert_bias", expected["router.expert_bias"])  # zeros: no correction
    missing = sorted(set(expected) - set(converted))
    if missing:
        raise ValueError(f"state_dict lacks the tensors for {missing} (transformers names: {spec.names})")
    for name, tensor in converted.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise ValueError(f"{name}: expected shape {tuple(expected[name].shape)} from the config, "
                             f"got {tuple(tensor.shape)}")
    dtype = converted["router.gate.weight"].dtype
    block.to(dtype)
    # NOTE: the score-correction bias stays float32 in bf16 checkpoints, as transformers keeps it:
    # it decides near-ties between experts' scores.
    block.router.expert_bias = block.router.expert_bias.float()
    block.load_state_dict({k: v.to(torch.float32 if k == "router.expert_bias" else dtype)
                           for k, v in converted.items()})
    return block.eval()


def convert_state_dict(config: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor]) -> dict:
    """transformers' block tensors (or their gradients) under moe_core's names and layouts."""
    return block_spec(config).convert(dict(state_dict))


__all__ = ["SUPPORTED_FAMILIES", "block_spec", "convert_state_dict", "load_block", "text_config"]
