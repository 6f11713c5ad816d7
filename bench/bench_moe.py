"""Benchmark the MoE expert paths side by side: per-expert loop, sorted torch, Triton, and more.

    python bench/bench_moe.py                  # CPU: small / medium / large token counts
    python bench/bench_moe.py --json out.json  # also write the rows as JSON
    python bench/bench_moe.py --gpu-suite      # on CUDA: decode, prefill, Mixtral-sized shapes

One run compares every path on the same inputs, so ratios are meaningful even on a noisy machine.
FLOPs of the routed experts: 6 * N * D * F with N = T*K slots (gate/up is 2*N*D*2F, down 2*N*F*D).
On a CPU Triton runs in its interpreter: that time says nothing about kernel speed, so it is only
checked for correctness (`--check-triton`), never reported as a timing.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from moe_core import fused_moe
from moe_core.router import softmax_topk

# Dense bf16 tensor-core peak (TFLOP/s, no sparsity) and HBM bandwidth (TB/s), from NVIDIA's
# datasheets: H100 SXM5 989 / 3.35, H100 PCIe 756 / 2.0, H200 989 / 4.8, A100 SXM 312 / 2.04.
DEVICE_PEAKS = {"H100 PCIe": (756.0, 2.0), "H100": (989.0, 3.35), "H200": (989.0, 4.8), "A100": (312.0, 2.04)}


@dataclass
class Shape:
    name: str
    tokens: int
    hidden: int
    ffn: int
    experts: int
    top_k: int
    dtype: str

    @property
    def flops(self) -> float:
        return 6.0 * self.tokens * self.top_k * self.hidden * self.ffn

    def weight_bytes_touched(self, ids: torch.Tensor) -> float:
        used = int(torch.unique(ids).numel())
        elem = torch.finfo(getattr(torch, self.dtype)).bits // 8
        return used * 3 * self.hidden * self.ffn * elem + 2 * self.tokens * self.hidden * elem


CPU_SHAPES = [
    Shape("small", 64, 256, 512, 8, 2, "float32"),
    Shape("medium", 512, 256, 512, 8, 2, "float32"),
    Shape("large", 2048, 256, 512, 8, 2, "float32"),
    Shape("fine-grained", 2048, 128, 64, 64, 6, "float32"),  # DeepSeekMoE-style: many small experts
]
GPU_SHAPES = [
    Shape("decode T=16", 16, 4096, 14336, 8, 2, "bfloat16"),
    Shape("decode T=64", 64, 4096, 14336, 8, 2, "bfloat16"),
    Shape("medium T=1024", 1024, 4096, 14336, 8, 2, "bfloat16"),
    Shape("prefill T=4096", 4096, 4096, 14336, 8, 2, "bfloat16"),
    Shape("prefill T=16384 (Mixtral)", 16384, 4096, 14336, 8, 2, "bfloat16"),
]


def make_inputs(shape: Shape, device: str, seed: int = 0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    dtype = getattr(torch, shape.dtype)
    x = torch.randn(shape.tokens, shape.hidden, generator=g).to(device, dtype)
    w1 = (torch.randn(shape.experts, 2 * shape.ffn, shape.hidden, generator=g) / shape.hidden**0.5).to(
        device, dtype
    )
    w2 = (torch.randn(shape.experts, shape.hidden, shape.ffn, generator=g) / shape.ffn**0.5).to(device, dtype)
    logits = torch.randn(shape.tokens, shape.experts, generator=g).to(device)
    return x, w1, w2, logits


def time_paths(paths: dict, device: str, repeats: int) -> dict[str, float | str]:
    """Median milliseconds per path (or an error string).

    On a CPU the paths are timed round-robin (loop, sorted, loop, sorted, ...) so that background
    load hits them alike and the ratio stays meaningful on a busy machine; on CUDA each path gets
    triton.testing.do_bench (warm-up, then the median of many launches).
    """
    results: dict[str, float | str] = {}
    samples: dict[str, list[float]] = {}
    for path, fn in paths.items():
        try:
            if device == "cuda":
                from triton.testing import do_bench

                results[path] = float(do_bench(fn, warmup=25, rep=100, return_mode="median"))
            else:
                fn()  # warm-up, and a check that the path runs here at all
                samples[path] = []
        except Exception as exc:
            results[path] = f"{type(exc).__name__}: {exc}"[:120]
    for _ in range(repeats):
        for path in samples:
            start = time.perf_counter()
            paths[path]()
            samples[path].append((time.perf_counter() - start) * 1e3)
    results.update({path: statistics.median(s) for path, s in samples.items()})
    return {path: results[path] for path in paths}


def grouped_mm_path(x, w1, w2, logits, top_k):
    """torch's own grouped GEMM (torch._grouped_mm), on the sorted layout."""
    r = softmax_topk(logits, top_k)
    flat = r.topk_ids.reshape(-1)
    order = torch.argsort(flat, stable=True)
    counts = torch.bincount(flat, minlength=w1.shape[0])
    offs = torch.cumsum(counts, 0).to(torch.int32)
    xs = x[order // top_k]
    h = torch._grouped_mm(xs, w1.transpose(1, 2), offs=offs)
    gate, up = h.chunk(2, dim=-1)
    y = torch._grouped_mm(torch.nn.functional.silu(gate) * up, w2.transpose(1, 2), offs=offs)
    y = y * r.topk_weights.reshape(-1)[order, None].to(y.dtype)
    return torch.zeros_like(x).index_add_(0, order // top_k, y)


def dense_upper_bound(x, w1, w2, top_k):
    """Same FLOPs as the routed experts, as two big dense GEMMs: the speed a perfect kernel nears."""
    xs = x.repeat(top_k, 1)
    h = xs @ w1[0].t()
    gate, up = h.chunk(2, dim=-1)
    return (torch.nn.functional.silu(gate) * up) @ w2[0].t()


def bench_shape(shape: Shape, device: str, repeats: int, with_backward: bool) -> list[dict]:
    x, w1, w2, logits = make_inputs(shape, device)
    paths = {
        "loop": lambda: fused_moe(x, w1, w2, logits, shape.top_k, backend="loop"),
        "sorted torch": lambda: fused_moe(x, w1, w2, logits, shape.top_k, backend="torch"),
    }
    if hasattr(torch, "_grouped_mm"):  # CUDA bf16 on Hopper; fp32 on CPU from torch 2.13
        paths["torch._grouped_mm"] = lambda: grouped_mm_path(x, w1, w2, logits, shape.top_k)
    if device == "cuda":
        paths["triton"] = lambda: fused_moe(x, w1, w2, logits, shape.top_k, backend="triton")
        paths["dense matmul (bound)"] = lambda: dense_upper_bound(x, w1, w2, shape.top_k)
    if device == "cuda" and with_backward:
        leaves = [t.clone().requires_grad_() for t in (x, w1, w2)]

        def fwd_bwd(backend):
            return lambda: fused_moe(*leaves, logits, shape.top_k, backend=backend).sum().backward()

        paths["triton fwd+bwd"] = fwd_bwd("triton")
        paths["sorted torch fwd+bwd"] = fwd_bwd("torch")
    timings = time_paths(paths, device, repeats)
    rows, loop_ms = [], timings.get("loop")
    ids = softmax_topk(logits, shape.top_k).topk_ids
    peak_tflops, peak_tbs = device_peaks(device)
    for path, ms in timings.items():
        if isinstance(ms, str):  # a path missing on this torch/GPU is reported, not fatal
            rows.append({"shape": shape.name, "path": path, "error": ms})
            continue
        flops = shape.flops * (3 if "bwd" in path else 1)
        tflops = flops / ms / 1e9
        row = {**asdict(shape), "shape": shape.name, "path": path, "ms": ms,
               "speedup_vs_loop": loop_ms / ms if isinstance(loop_ms, float) else None,
               "tflops": tflops}  # fmt: skip
        if peak_tflops:
            row["pct_peak_bf16"] = 100 * tflops / peak_tflops
            gbs = shape.weight_bytes_touched(ids) / ms / 1e6
            row["gbs"] = gbs
            row["pct_bandwidth"] = 100 * gbs / (peak_tbs * 1e3)
        rows.append(row)
    if torch.cuda.is_available() and device == "cuda":
        torch.cuda.empty_cache()
    return rows


def device_peaks(device: str) -> tuple[float | None, float | None]:
    if device != "cuda":
        return None, None
    name = torch.cuda.get_device_name()
    for key, peaks in DEVICE_PEAKS.items():
        if key in name:
            return peaks
    return None, None


def check_triton_matches(shape: Shape) -> float:
    """Max |triton - torch| on a small CPU shape (interpreter): correctness, not speed."""
    x, w1, w2, logits = make_inputs(shape, "cpu")
    a = fused_moe(x, w1, w2, logits, shape.top_k, backend="triton")
    b = fused_moe(x, w1, w2, logits, shape.top_k, backend="torch")
    return float((a - b).abs().max())


def format_table(rows: list[dict]) -> str:
    cols = ["shape", "path", "ms", "speedup_vs_loop", "tflops", "pct_peak_bf16", "gbs", "pct_bandwidth"]
    present = [c for c in cols if any(c in r for r in rows)]
    lines = ["| " + " | ".join(present) + " |", "|" + "---|" * len(present)]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['shape']} | {r['path']} | error: {r['error']} |")
            continue
        cells = []
        for c in present:
            v = r.get(c)
            cells.append("" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu-suite", action="store_true", help="Mixtral-sized shapes on CUDA")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--backward", action="store_true", help="also time forward+backward (CUDA)")
    parser.add_argument("--quick", action="store_true", help="only the smallest shape (smoke test)")
    parser.add_argument("--json", type=Path, help="write rows and machine info here")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch (1 = steadiest)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.gpu_suite and device != "cuda":
        print("--gpu-suite needs a CUDA device; none is present", file=sys.stderr)
        return 2
    shapes = GPU_SHAPES if args.gpu_suite else CPU_SHAPES
    shapes = shapes[:1] if args.quick else shapes
    cpu_name = platform.processor() or platform.machine()
    machine = {
        "device": torch.cuda.get_device_name() if device == "cuda" else cpu_name,
        "torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
    }  # fmt: skip
    try:  # read the version without importing triton: moe_core picks interpreter vs compiler first
        machine["triton"] = importlib.metadata.version("triton")
    except importlib.metadata.PackageNotFoundError:
        machine["triton"] = None
    rows = [row for shape in shapes for row in bench_shape(shape, device, args.repeats, args.backward)]
    print(f"# MoE expert paths on {machine['device']} (torch {machine['torch']}, triton {machine['triton']})")
    print(format_table(rows))
    if device == "cpu" and not args.quick:
        diff = check_triton_matches(Shape("check", 40, 32, 64, 4, 2, "float32"))
        print(f"\nTriton (interpreter, not timed) vs sorted torch, T=40: max |diff| = {diff:.2e}")
        machine["triton_interpreter_max_abs_diff"] = diff
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
