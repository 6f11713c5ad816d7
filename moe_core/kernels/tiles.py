"""Tile sizes for the grouped GEMM, chosen per shape class (no Triton import here).

Named config lists, as the Triton tutorials keep them: decode (few tokens, the kernel streams
weights, so small BLOCK_M and wide N/K tiles) and prefill (many tokens, compute-bound, large
square-ish tiles and deeper pipelining). Under the interpreter every program is a Python step,
so fewer, larger tiles are faster there.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TileConfig:
    block_m: int = 16  # rows per M-block; also the dispatch padding (vLLM's BLOCK_SIZE_M)
    block_n: int = 32
    block_k: int = 32
    group_m: int = 8  # M-blocks per L2-friendly group
    num_warps: int = 4
    num_stages: int = 2

    def __post_init__(self) -> None:
        for name in ("block_m", "block_n", "block_k"):
            value = getattr(self, name)
            # tl.dot needs every tile dimension >= 16 and a power of two.
            if value < 16 or value & (value - 1):
                raise ValueError(f"TileConfig.{name} must be a power of two >= 16, got {value}")


INTERPRETER_TILES = TileConfig(block_m=16, block_n=64, block_k=64)

DECODE_CONFIGS = [  # T <= 64: memory-bound, each weight tile read once per M-block
    TileConfig(block_m=16, block_n=64, block_k=128, group_m=1, num_warps=4, num_stages=4),
    TileConfig(block_m=16, block_n=128, block_k=128, group_m=1, num_warps=4, num_stages=3),
    TileConfig(block_m=16, block_n=256, block_k=64, group_m=1, num_warps=8, num_stages=4),
]

PREFILL_CONFIGS = [  # T >= 4096: compute-bound, big tiles for tensor-core reuse
    TileConfig(block_m=128, block_n=128, block_k=64, group_m=8, num_warps=8, num_stages=4),
    TileConfig(block_m=128, block_n=256, block_k=64, group_m=8, num_warps=8, num_stages=3),
    TileConfig(block_m=64, block_n=128, block_k=64, group_m=8, num_warps=4, num_stages=4),
]

MEDIUM_CONFIGS = [
    TileConfig(block_m=64, block_n=64, block_k=64, group_m=8, num_warps=4, num_stages=3),
    TileConfig(block_m=32, block_n=128, block_k=64, group_m=8, num_warps=4, num_stages=4),
]


def shape_class(num_tokens: int) -> str:
    """'decode' (T <= 64), 'prefill' (T >= 4096) or 'medium'."""
    if num_tokens <= 64:
        return "decode"
    return "prefill" if num_tokens >= 4096 else "medium"


def candidate_tiles(num_tokens: int) -> list[TileConfig]:
    return {"decode": DECODE_CONFIGS, "prefill": PREFILL_CONFIGS, "medium": MEDIUM_CONFIGS}[
        shape_class(num_tokens)
    ]


def default_tiles(num_tokens: int, interpreted: bool) -> TileConfig:
    """The first candidate of the shape class (or the interpreter's tiles on a CPU)."""
    return INTERPRETER_TILES if interpreted else candidate_tiles(num_tokens)[0]
