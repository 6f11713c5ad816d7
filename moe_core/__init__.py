"""moe_core — a small but serious Mixture-of-Experts engine in PyTorch + Triton.

The production path: route -> sort token slots by expert -> grouped GEMM (Triton) -> weighted
combine, with torch reference paths beside it. Importing this package never imports Triton,
Streamlit or Plotly; the Triton kernel loads on first use (see `moe_core.kernels`).
"""

from moe_core.config import FamilyMoEConfig, MoEConfig
from moe_core.dispatch import (
    Dispatch,
    align_block_size,
    apply_capacity,
    apply_expert_capacity,
    sort_by_expert,
)
from moe_core.kernels.tiles import TileConfig
from moe_core.layer import MoEOutput, SparseMoE
from moe_core.losses import load_balancing_loss, router_z_loss
from moe_core.metrics import LoadStats, load_stats
from moe_core.ops import fused_moe, moe_experts
from moe_core.router import (
    Routing,
    TopKRouter,
    expert_choice,
    select_experts,
    sigmoid_bias_topk,
    softmax_topk,
    sparsemixer_topk,
)


def __getattr__(name: str):
    # count_params is pure Python; imported on demand so `import moe_core` stays light.
    if name in ("count_params", "ParamCount"):
        from moe_core import params

        return getattr(params, name)
    raise AttributeError(f"module 'moe_core' has no attribute {name!r}")


__all__ = [
    "Dispatch",
    "FamilyMoEConfig",
    "LoadStats",
    "MoEConfig",
    "MoEOutput",
    "ParamCount",
    "Routing",
    "SparseMoE",
    "TileConfig",
    "TopKRouter",
    "align_block_size",
    "apply_capacity",
    "apply_expert_capacity",
    "count_params",
    "expert_choice",
    "fused_moe",
    "load_balancing_loss",
    "load_stats",
    "moe_experts",
    "router_z_loss",
    "select_experts",
    "sigmoid_bias_topk",
    "softmax_topk",
    "sort_by_expert",
    "sparsemixer_topk",
]
