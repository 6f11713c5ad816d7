"""`MoELM`: the course's real small MoE language model, in Mixtral's exact shape (DESIGN.md contract 6).

    input_ids [B, T] -> embed -> L x ( x + attn(rms(x)) ; x + SparseMoE(rms(x)) ) -> rms -> lm_head

* Attention: causal multi-head self-attention with rotary position embeddings (RoPE, Su et al. 2021,
  https://arxiv.org/abs/2104.09864), no biases, grouped KV heads allowed, a KV cache for generation.
* Every feed-forward block is a `moe_core.SparseMoE`: a linear gate, softmax top-2 of 8 in float32,
  renormalised (Mixtral, Jiang et al. 2024, https://arxiv.org/abs/2401.04088), SwiGLU experts with
  stacked weights w1 [E, 2F, D] / w2 [E, D, F]. A dense baseline is the same model with E = K = 1.
* Input and output embeddings are tied (`tie_word_embeddings`), which Mixtral's config supports.

The config is Hugging Face's `MixtralConfig` field for field, so `save_pretrained` writes a folder
that `transformers.AutoModelForCausalLM` loads with the same logits (see `moe_core.lm.checkpoint`).
Shape legend: B batch, T sequence, D hidden, H heads, Hk kv heads, Dh head dim, V vocab, E experts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import nn

from moe_core.config import MoEConfig
from moe_core.layer import SparseMoE
from moe_core.losses import load_balancing_loss


@dataclass(frozen=True)
class LMConfig:
    """The fields of a Hugging Face Mixtral `config.json` that shape the model (same names)."""

    vocab_size: int = 4096  # byte-level BPE trained on the corpus (moe_core.lm.tokenizer)
    hidden_size: int = 256  # D
    intermediate_size: int = 512  # F per expert
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 4  # = heads: plain multi-head attention (Mixtral itself uses 8 kv of 32)
    num_local_experts: int = 8  # E
    num_experts_per_tok: int = 2  # K
    max_position_embeddings: int = 2048
    rope_theta: float = 10000.0  # short contexts: the original RoPE base, not Mixtral's 1e6
    rms_norm_eps: float = 1e-5
    router_aux_loss_coef: float = 0.01  # Switch alpha used in training
    tie_word_embeddings: bool = True
    bos_token_id: int = 1
    eos_token_id: int = 2
    pad_token_id: int = 0

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("LMConfig.hidden_size must be a multiple of num_attention_heads")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("LMConfig.num_attention_heads must be a multiple of num_key_value_heads")
        if (self.hidden_size // self.num_attention_heads) % 2:
            raise ValueError("LMConfig: head_dim must be even for rotary embeddings")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def moe_config(self) -> MoEConfig:
        return MoEConfig(
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_experts=self.num_local_experts,
            top_k=self.num_experts_per_tok,
            renormalize=True,
            backend="torch",
        )

    def to_hf_dict(self) -> dict:
        """A complete Mixtral `config.json` mapping."""
        cfg = asdict(self)
        rope_theta = cfg.pop("rope_theta")
        return {
            "architectures": ["MixtralForCausalLM"],
            "model_type": "mixtral",
            **cfg,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "rope_parameters": {"rope_theta": rope_theta, "rope_type": "default"},
            "sliding_window": None,
            "attention_dropout": 0.0,
            "router_jitter_noise": 0.0,
            "output_router_logits": False,
            "initializer_range": 0.02,
            "use_cache": True,
            "dtype": "float32",
        }

    @classmethod
    def from_hf_dict(cls, cfg: dict) -> LMConfig:
        if cfg.get("model_type") != "mixtral":
            raise ValueError(
                f"expected a Mixtral config (model_type 'mixtral'), got {cfg.get('model_type')!r}"
            )
        if cfg.get("hidden_act", "silu") != "silu" or cfg.get("sliding_window") is not None:
            raise ValueError("MoELM supports hidden_act 'silu' and no sliding window")
        values = {f.name: cfg[f.name] for f in fields(cls) if f.name in cfg and cfg[f.name] is not None}
        rope = cfg.get("rope_parameters") or {}
        values["rope_theta"] = float(rope.get("rope_theta", cfg.get("rope_theta", 1e6)))
        config = cls(**values)
        if cfg.get("head_dim") not in (None, config.head_dim):
            raise ValueError("MoELM needs head_dim == hidden_size // num_attention_heads")
        return config


@dataclass
class LMOutput:
    logits: torch.Tensor  # [B, T, V]
    router_logits: tuple[torch.Tensor, ...]  # one [B*T, E] per layer
    topk_ids: tuple[torch.Tensor, ...]  # one [B*T, K] per layer: the experts each token visited
    num_experts: int
    top_k: int

    @cached_property
    def aux_loss(self) -> torch.Tensor:
        """Mean over layers of the Switch loss (= K when perfectly balanced); computed on first use
        only, so inference does not pay for it. Differentiable through `router_logits`."""
        if not self.router_logits or self.router_logits[0].shape[0] == 0:
            return self.logits.new_zeros(())
        return torch.stack(
            [load_balancing_loss(r, self.num_experts, self.top_k) for r in self.router_logits]
        ).mean()


class RMSNorm(nn.Module):
    """x / rms(x) * weight, computed in float32 (Zhang & Sennrich 2019, as Mixtral/Llama)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [T, Dh] for integer positions [T] (the half-split layout transformers uses)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]  # [T, Dh/2]
    emb = torch.cat((freqs, freqs), dim=-1)  # [T, Dh]
    return emb.cos(), emb.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x [B, H, T, Dh]: pairs (i, i + Dh/2) turn by angle position * inv_freq_i."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv, self.head_dim = (
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.head_dim,
        )
        self.q_proj = nn.Linear(cfg.hidden_size, self.n_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.hidden_size, self.n_kv * self.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.hidden_size, self.n_kv * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, cfg.hidden_size, bias=False)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: list | None
    ) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # [B, H, T, Dh]
        k = self.k_proj(x).view(B, T, self.n_kv, self.head_dim).transpose(1, 2)  # [B, Hk, T, Dh]
        v = self.v_proj(x).view(B, T, self.n_kv, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        past = 0
        if cache is not None:  # cache = [k, v] of earlier positions, or [None, None]
            if cache[0] is not None:
                past = cache[0].shape[2]
                k, v = torch.cat((cache[0], k), dim=2), torch.cat((cache[1], v), dim=2)
            cache[0], cache[1] = k, v
        if self.n_kv != self.n_heads:
            k = k.repeat_interleave(self.n_heads // self.n_kv, dim=1)
            v = v.repeat_interleave(self.n_heads // self.n_kv, dim=1)
        if past == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1)
        else:  # queries sit at positions past..past+T-1 and may see keys 0..their own position
            mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))  # [B, T, D]


class DecoderLayer(nn.Module):
    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = SparseMoE(cfg.moe_config())

    def forward(self, x, cos, sin, cache):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache)
        moe = self.mlp(self.post_attention_layernorm(x))
        return x + moe.hidden_states, moe


class MoELM(nn.Module):
    """Mixtral-shaped decoder-only LM whose every FFN is a `moe_core.SparseMoE`."""

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.reset_parameters()
        if config.tie_word_embeddings:
            self.lm_head.weight = self.embed_tokens.weight

    def reset_parameters(self, std: float = 0.02) -> None:
        """GPT-2/Mixtral-style init: N(0, 0.02) everywhere, residual outputs scaled by 1/sqrt(2L)."""
        out_std = std / (2 * self.config.num_hidden_layers) ** 0.5
        for name, p in self.named_parameters():
            if p.dim() == 1:
                continue  # RMSNorm weights stay 1
            nn.init.normal_(p, std=out_std if name.endswith(("o_proj.weight", "experts.w2")) else std)

    def forward(self, input_ids: torch.Tensor, cache: list | None = None, start_pos: int = 0) -> LMOutput:
        """input_ids [B, T] -> LMOutput. With `cache` (from `new_cache()`), keys/values are kept."""
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be [B, T], got shape {tuple(input_ids.shape)}")
        T = input_ids.shape[1]
        x = self.embed_tokens(input_ids)  # [B, T, D]
        positions = torch.arange(start_pos, start_pos + T, device=input_ids.device)
        cos, sin = rope_cos_sin(positions, self.config.head_dim, self.config.rope_theta)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        router_logits, topk_ids = [], []
        for i, layer in enumerate(self.layers):
            x, moe = layer(x, cos, sin, None if cache is None else cache[i])
            router_logits.append(moe.router_logits)
            topk_ids.append(moe.topk_ids)
        logits = self.lm_head(self.norm(x))  # [B, T, V]
        cfg = self.config
        return LMOutput(
            logits, tuple(router_logits), tuple(topk_ids), cfg.num_local_experts, cfg.num_experts_per_tok
        )

    def new_cache(self) -> list:
        """An empty KV cache: one [k, v] pair per layer, filled by `forward(..., cache=...)`."""
        return [[None, None] for _ in self.layers]

    def num_params(self) -> tuple[int, int]:
        """(total, active per token), counting the tied embedding once, as model cards do."""
        cfg = self.config
        total = sum(p.numel() for p in self.parameters())
        expert = 3 * cfg.hidden_size * cfg.intermediate_size
        inactive = cfg.num_hidden_layers * (cfg.num_local_experts - cfg.num_experts_per_tok) * expert
        return total, total - inactive

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor | list[int],
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        top_k: int | None = None,
        seed: int | None = None,
        eos_token_id: int | None = None,
        use_cache: bool = True,
    ) -> Iterator[int]:
        """Yield up to max_new_tokens new token ids, one at a time (stream them as they come).

        temperature 0 is greedy; otherwise sample from softmax(logits / temperature), restricted to
        the top_k most likely tokens if given, with a private generator seeded by `seed`.
        """
        ids = torch.as_tensor(input_ids, dtype=torch.long).reshape(1, -1)
        if ids.shape[1] == 0:
            raise ValueError("generate needs at least one prompt token")
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        cache = self.new_cache() if use_cache else None
        logits = self(ids, cache=cache).logits[0, -1]
        pos = ids.shape[1]
        for _ in range(max_new_tokens):
            token = _pick(logits, temperature, top_k, gen)
            yield token
            if token == eos_token_id:
                return
            nxt = torch.tensor([[token]])
            if use_cache:
                logits = self(nxt, cache=cache, start_pos=pos).logits[0, -1]
            else:
                ids = torch.cat((ids, nxt), dim=1)
                logits = self(ids).logits[0, -1]
            pos += 1

    @classmethod
    def from_pretrained(cls, path) -> MoELM:
        from moe_core.lm.checkpoint import load_pretrained

        return load_pretrained(cls, path)

    def save_pretrained(self, path, dtype: torch.dtype = torch.float32) -> None:
        """Write a Hugging Face Mixtral folder; `dtype` is the storage dtype of model.safetensors."""
        from moe_core.lm.checkpoint import save_pretrained

        save_pretrained(self, path, dtype)


def _pick(logits_V: torch.Tensor, temperature: float, top_k: int | None, gen) -> int:
    if temperature <= 0:
        return int(logits_V.argmax())
    logits_V = logits_V.float() / temperature
    if top_k is not None and top_k < logits_V.numel():
        kth = torch.topk(logits_V, top_k).values[-1]
        logits_V = logits_V.masked_fill(logits_V < kth, float("-inf"))
    return int(torch.multinomial(torch.softmax(logits_V, -1), 1, generator=gen))
