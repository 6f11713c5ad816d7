"""Lesson 5's arithmetic and its quick live run: pure functions, no Streamlit, tested alone.

* Shared + fine-grained experts (DeepSeekMoE, Dai et al. 2024, https://arxiv.org/abs/2401.06066):
  split each of E experts into m of width F/m and route to m*k of them; then turn K_s of those
  into shared experts every token uses and route to m*k - K_s. Parameters and FLOPs stay fixed;
  the number of expert combinations C(mE - K_s, mk - K_s) explodes.
* `train_specialisation` trains that layer for a few seconds on the multi-domain task of Lesson 4
  (`moe_core.data`) and measures how much the routed experts' choice says about a token's domain.
* Per-GPU memory of a real model under expert parallelism, in bf16, FP8 or FP4.
* Reading a pasted `config.json` with clear messages (`parse_config`).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from moe_core.config import MoEConfig
from moe_core.data import make_task, sample_batch
from moe_core.layer import SparseMoE
from moe_core.losses import load_balancing_loss
from moe_core.params import ParamCount, count_params
from moe_core.router import Routing

# --- shared and fine-grained experts -------------------------------------------------------

BASE_EXPERTS, BASE_TOP_K = 16, 2  # DeepSeekMoE's starting point: 16 experts, top-2
TOY_D, TOY_F = 32, 32  # the live layer: model width D, width F of one base expert
SPLITS = (1, 2, 4, 8)  # m; m = 4 with one shared expert is DeepSeekMoE 2B's layout


@dataclass(frozen=True)
class FineGrained:
    split: int  # m
    shared: int  # K_s shared experts, each of width F/m
    routed: int  # mE - K_s routed experts
    top_k: int  # mk - K_s routed experts per token
    expert_width: int  # F/m
    expert_params: int  # all experts (routed + shared) of one layer: fixed by the budget
    active_params: int  # expert weights one token uses: fixed too
    router_params: int  # routed * D: the only part that grows
    combinations: int  # C(routed, top_k)


def max_shared(split: int) -> int:
    """At most m*k - 1 shared experts: a token must still be routed to at least one expert."""
    return split * BASE_TOP_K - 1


def fine_grained(split: int, shared: int, d: int = TOY_D, f: int = TOY_F) -> FineGrained:
    """The layer after splitting the base experts m-fold and sharing K_s of the pieces."""
    if split < 1 or f % split:
        raise ValueError(f"split m must divide the expert width {f}, got {split}")
    if not 0 <= shared <= max_shared(split):
        raise ValueError(f"shared experts must be in 0..{max_shared(split)} for m = {split}, got {shared}")
    width = f // split
    per_expert = 3 * d * width  # SwiGLU: gate, up (D -> F/m) and down (F/m -> D)
    routed, top_k = split * BASE_EXPERTS - shared, split * BASE_TOP_K - shared
    return FineGrained(split, shared, routed, top_k, width, (routed + shared) * per_expert,
                       (top_k + shared) * per_expert, routed * d, math.comb(routed, top_k))


@dataclass(frozen=True)
class SpecialisationRun:
    split: int
    shared: int
    loss: float  # held-out MSE after training
    score: float  # I(domain; routed expert) / H(domain): 0 = routing ignores the domain, 1 = decides it
    shares: list[list[float]]  # [domains][routed experts]: share of each domain's slots per expert
    max_load: float  # busiest routed expert's load over the mean load
    seconds: float


def dense_masked_moe(model: SparseMoE, x_TD: torch.Tensor) -> tuple[torch.Tensor, Routing]:
    """`model(x)` computed densely: every expert on every token, unchosen ones weighted 0.

    NOTE: at these toy sizes one batched einsum beats the sorted path's per-expert Python loop
    (128 experts would mean 128 small matmuls per step), and the result is the same function —
    the tests hold it to SparseMoE's own forward.
    """
    routing = model.router(x_TD)
    gate_ETF, up_ETF = torch.einsum("td,efd->etf", x_TD, model.experts.w1).chunk(2, dim=-1)
    y_ETD = torch.einsum("etf,edf->etd", F.silu(gate_ETF) * up_ETF, model.experts.w2)
    weights_TE = torch.zeros(x_TD.shape[0], y_ETD.shape[0], dtype=x_TD.dtype)
    weights_TE = weights_TE.scatter(1, routing.topk_ids, routing.topk_weights.to(x_TD.dtype))
    out_TD = torch.einsum("te,etd->td", weights_TE, y_ETD)
    if model.shared_experts is not None:
        out_TD = out_TD + model.shared_experts(x_TD)
    return out_TD, routing


def specialisation_score(domain_T: torch.Tensor, ids_TK: torch.Tensor, num_domains: int,
                         num_experts: int) -> tuple[float, list[list[float]]]:
    """Normalised mutual information between a slot's domain and its expert, and the share table."""
    domains = domain_T[:, None].expand_as(ids_TK).reshape(-1)
    joint = torch.zeros(num_domains, num_experts, dtype=torch.float64)
    joint.index_put_((domains, ids_TK.reshape(-1)), torch.ones(domains.numel(), dtype=torch.float64),
                     accumulate=True)
    p = joint / joint.sum()
    p_d, p_e = p.sum(1, keepdim=True), p.sum(0, keepdim=True)
    nz = p > 0
    mutual = float((p[nz] * (p[nz] / (p_d * p_e)[nz]).log()).sum())
    entropy = float(-(p_d[p_d > 0] * p_d[p_d > 0].log()).sum())
    shares = joint / joint.sum(1, keepdim=True).clamp_min(1)
    return mutual / entropy, shares.tolist()


def train_specialisation(split: int, shared: int, steps: int = 120, seed: int = 0) -> SpecialisationRun:
    """Train the fine-grained layer on 8-domain data (Adam, a light Switch loss), then measure it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: threads only add overhead, and one is bit-reproducible
    try:
        return _train(fine_grained(split, shared), steps, seed)
    finally:
        torch.set_num_threads(before)


def _train(layout: FineGrained, steps: int, seed: int) -> SpecialisationRun:
    split, shared = layout.split, layout.shared
    start = time.perf_counter()
    torch.manual_seed(seed)  # SparseMoE draws its init from the global generator
    cfg = MoEConfig(hidden_size=TOY_D, intermediate_size=layout.expert_width, num_experts=layout.routed,
                    top_k=layout.top_k, num_shared_experts=shared)
    model = SparseMoE(cfg)
    task, g = make_task(num_domains=8, dim=TOY_D, seed=seed), torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(steps):
        batch = sample_batch(task, 256, g)
        out, routing = dense_masked_moe(model, batch.x)
        aux = load_balancing_loss(routing.router_logits, cfg.num_experts, cfg.top_k)
        loss = F.mse_loss(out, batch.y) + 0.02 * aux
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        held_out = sample_batch(task, 2048, torch.Generator().manual_seed(seed + 10_000))
        out, routing = dense_masked_moe(model, held_out.x)
        score, shares = specialisation_score(held_out.domain, routing.topk_ids, 8, cfg.num_experts)
        load = torch.bincount(routing.topk_ids.reshape(-1), minlength=cfg.num_experts).double()
    return SpecialisationRun(split, shared, float(F.mse_loss(out, held_out.y)), score, shares,
                             float(load.max() / load.mean()), time.perf_counter() - start)


# --- memory per GPU ------------------------------------------------------------------------

GB = 1e9  # decimal gigabytes, as GPU data sheets count them
# Bytes per weight, block scales included: DeepSeek-V3's FP8 keeps one fp32 scale per 128x128 block;
# MXFP4 one 8-bit scale per 32 values (OCP Microscaling spec; Rouhani et al. 2023).
FORMATS: dict[str, float] = {"bf16": 2.0, "FP8": 1.0 + 4 / (128 * 128), "FP4": 0.5 + 1 / 32}
KV_BYTES: dict[str, float] = {"bf16": 2.0, "FP8": 1.0, "FP4": 1.0}  # a KV cache below FP8 is rare
PREFILL_CHUNK = 8192  # tokens one GPU processes per forward step (a chunked-prefill budget)


def _field(config: Mapping[str, Any], *path: str) -> Any:
    for key in path:
        config = config[key]
    return config


def kv_elements_per_token(config: Mapping[str, Any]) -> int:
    """KV-cache values stored per token, all layers. MLA (DeepSeek) caches a compressed latent."""
    mt = count_params(config).model_type  # also validates every field used below
    if mt == "dbrx":
        heads, kv = _field(config, "n_heads"), _field(config, "attn_config", "kv_n_heads")
        return config["n_layers"] * 2 * kv * (config["d_model"] // heads)
    layers = config["num_hidden_layers"]
    if mt.startswith("deepseek"):
        return layers * (config["kv_lora_rank"] + config["qk_rope_head_dim"])
    heads = config["num_attention_heads"]
    kv = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    return layers * 2 * kv * head_dim


@dataclass(frozen=True)
class MemoryPerGPU:
    replicated: float  # bytes: attention, embeddings, norms, routers, shared experts, dense FFNs
    experts: float  # bytes: this GPU's 1/G of the routed experts
    kv_cache: float  # bytes: its sequences' keys and values
    activations: float  # bytes: working buffers of one layer for one prefill chunk (an estimate)

    @property
    def total(self) -> float:
        return self.replicated + self.experts + self.kv_cache + self.activations


def memory_per_gpu(config: Mapping[str, Any], gpus: int, fmt: str, seqs_per_gpu: int,
                   context: int) -> MemoryPerGPU:
    """One GPU's memory when `gpus` GPUs serve the model with expert parallelism (attention DP)."""
    pc = count_params(config)
    if gpus < 1 or (pc.num_experts and pc.num_experts % gpus):
        raise ValueError(f"the GPU count must divide the {pc.num_experts} experts, got {gpus}")
    per_weight = FORMATS[fmt]
    d = int(config.get("hidden_size") or config.get("d_model"))
    width = pc.active_routed_experts // max(1, pc.num_moe_layers * pc.top_k * 3 * d)  # F of one expert
    # Per token in flight, in bf16: 4 D-wide buffers (residual, norm, attention out, MoE out), the
    # k dispatched rows sent and received (2kD), the k experts' gate and up projections (2kF).
    per_token = 2.0 * (4 * d + 2 * pc.top_k * d + 2 * pc.top_k * width)
    return MemoryPerGPU(
        replicated=(pc.total - pc.routed_experts) * per_weight,
        experts=pc.routed_experts / gpus * per_weight,
        kv_cache=seqs_per_gpu * context * kv_elements_per_token(config) * KV_BYTES[fmt],
        activations=min(PREFILL_CHUNK, seqs_per_gpu * context) * per_token,
    )


def experts_touched(num_experts: int, top_k: int, batch_tokens: int) -> float:
    """Expected distinct experts a batch of T tokens uses per layer, if choices were uniform:
    E(1 - (1 - k/E)^T)."""
    return num_experts * (1 - (1 - top_k / num_experts) ** batch_tokens)


# --- a real expert-parallel run, in its own process ------------------------------------------

REPO = Path(__file__).resolve().parents[2]
EP_TIMEOUT_S = 180


def run_ep_demo_process(world_size: int, tokens: int, experts: int, top_k: int, skew: float,
                        seed: int = 0) -> dict[str, Any]:
    """`python -m moe_core ep-demo ... --json` in a fresh interpreter; its JSON as a dict.

    Why a subprocess rather than `moe_core.parallel.launch` in the app's own process: the server is
    multi-threaded (so it must not fork), and Streamlit swaps `__main__` for the page script, so a
    spawned or forkserver rank would re-run the whole page on import. A fresh single-threaded
    interpreter imports torch once and forks its ranks in well under a second.
    """
    cmd = [sys.executable, "-m", "moe_core", "ep-demo", "--world-size", str(world_size), "--tokens",
           str(tokens), "--experts", str(experts), "--topk", str(top_k), "--skew", str(skew),
           "--seed", str(seed), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=EP_TIMEOUT_S, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise RuntimeError(lines[-1])
    return json.loads(done.stdout)


# --- a pasted config.json ------------------------------------------------------------------

MAX_CONFIG_CHARS = 200_000


class ConfigError(ValueError):
    """A learner-facing message: what is wrong with the pasted text and how to fix it."""


def parse_config(text: str) -> tuple[dict[str, Any], ParamCount]:
    """The pasted config.json and its parameter count, or ConfigError with a clear message."""
    if not text or not text.strip():
        raise ConfigError("Paste the contents of a model's config.json (a JSON object) first.")
    if len(text) > MAX_CONFIG_CHARS:
        raise ConfigError(f"That is {len(text):,} characters; a config.json is a few thousand. "
                          "Paste only the config file.")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"This is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}.") from None
    if not isinstance(config, dict):
        raise ConfigError(f"A config.json is a JSON object ({{...}}), but this is a {type(config).__name__}.")
    try:
        return config, count_params(config)
    except ValueError as e:
        raise ConfigError(f"count_params could not use this config: {e}.") from None
