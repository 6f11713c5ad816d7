"""Lesson 3's live micro-benchmark panel, its timing and its FLOP count.

Three implementations of the same routed SwiGLU experts (`moe_core.moe_experts` backends):
"loop" (per-expert, Hugging Face style), "torch" (sorted segments) and "triton" (the grouped GEMM).
On a machine without CUDA the Triton kernel runs in Triton's interpreter, one program after
another in Python: its time there is a correctness run, never kernel speed, and it is run on at
most `INTERPRETER_TOKENS` tokens because the interpreter takes seconds per hundred tokens.

Real GPU numbers come from `bench/results/*.json` (written by bench/bench_moe.py on a GPU); this
module only reads them, whatever their exact layout, and says so when there are none.

`time_backend`, `flops`, `stored_results` and `on_gpu` are plain functions (tested without
Streamlit); the panel (`bench_panel`, a keyed fragment) caches each timing by its settings with
`st.cache_data`. Files measured on a CPU are shown apart from GPU ones, never as GPU numbers.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import streamlit as st
import torch

from lessons.course.charts import show_chart
from lessons.course.predict import predict, reveal
from lessons.course.render import md_escape
from lessons.course.url_state import forget_notice_and_rerun, show_stored_notices, write_url
from lessons.lesson3_experts import figures as charts
from lessons.lesson3_experts import predictions as pr
from moe_core.kernels import TritonUnavailable, triton_interpreted
from moe_core.ops import moe_experts
from moe_core.router import softmax_topk

HIDDEN, FFN = 64, 128  # D and F of the benchmark layer: small enough for a CPU, big enough to time
INTERPRETER_TOKENS = 64
TIME_BUDGET_S = 0.4  # per backend: repeat until this much time has passed (at least MIN_REPS)
MIN_REPS = 3
BACKENDS = {"loop": "naive per-expert loop", "torch": "sorted grouped path (torch)",
            "triton": "Triton kernel"}  # fmt: skip
RESULTS_DIR = Path(__file__).resolve().parents[2] / "bench" / "results"
BENCH = "experts_bench"  # fragment key
BENCH_TOKENS, BENCH_EXPERTS, BENCH_K = (16, 64, 256, 1024), (8, 32, 64), (1, 2, 4)
BENCH_CHOICES = {"experts_bench_tokens": BENCH_TOKENS, "experts_bench_experts": BENCH_EXPERTS,
                 "experts_bench_k": BENCH_K}  # fmt: skip


@dataclass(frozen=True)
class Timing:
    backend: str
    tokens: int  # tokens actually run (fewer than asked for the interpreter)
    ms_median: float
    ms_min: float
    reps: int
    max_abs_diff: float  # against the sorted torch path on the same inputs
    device: str
    interpreted: bool  # Triton ran in its interpreter: the time is not kernel speed
    error: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def bench_inputs(tokens: int, experts: int, top_k: int, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Seeded inputs shared by every backend: x [T, D], w1 [E, 2F, D], w2 [E, D, F], routing [T, K]."""
    gen = torch.Generator().manual_seed(1234)
    x = torch.randn(tokens, HIDDEN, generator=gen)
    w1 = torch.randn(experts, 2 * FFN, HIDDEN, generator=gen) / HIDDEN**0.5
    w2 = torch.randn(experts, HIDDEN, FFN, generator=gen) / FFN**0.5
    routing = softmax_topk(torch.randn(tokens, experts, generator=gen), top_k)
    named = {"x": x, "w1": w1, "w2": w2, "weights": routing.topk_weights, "ids": routing.topk_ids}
    return {k: v.to(device) for k, v in named.items()}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_backend(backend: str, tokens: int, experts: int, top_k: int) -> Timing:
    """Median time per call of one backend, and its largest difference from the torch path."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    interpreted = backend == "triton" and device == "cpu"
    run_tokens = min(tokens, INTERPRETER_TOKENS) if interpreted else tokens
    inp = bench_inputs(run_tokens, experts, top_k, device)
    call = lambda b: moe_experts(inp["x"], inp["w1"], inp["w2"], inp["weights"], inp["ids"], backend=b)
    try:
        reference, out = call("torch"), call(backend)  # the second call is also the warm-up
    except TritonUnavailable as exc:
        return Timing(backend, run_tokens, float("nan"), float("nan"), 0, float("nan"), device, interpreted,
                      error=str(exc))  # fmt: skip
    interpreted = interpreted or (backend == "triton" and triton_interpreted())
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < (1 if interpreted else MIN_REPS) or time.perf_counter() - start < TIME_BUDGET_S:
        _sync(device)
        t0 = time.perf_counter()
        call(backend)
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
        if interpreted:
            break  # one interpreted run is the check; repeating it would only take longer
    diff = float((out.float() - reference.float()).abs().max())
    return Timing(backend, run_tokens, statistics.median(times), min(times), len(times), diff, device,
                  interpreted)  # fmt: skip


def flops(tokens: int, experts: int, top_k: int, hidden: int = HIDDEN, ffn: int = FFN) -> dict[str, float]:
    """Forward FLOPs (2 per multiply-add) of the router and the experts (Lesson 3, section 60)."""
    router = 2 * tokens * hidden * experts
    per_expert_token = 6 * hidden * ffn  # gate, up, down: three D x F matrix-vector products
    return {
        "router": router,
        "sparse (k experts per token)": router + tokens * top_k * per_expert_token,
        "all E experts on every token": router + tokens * experts * per_expert_token,
        "one dense FFN of width F": tokens * per_expert_token,
    }


def stored_results(directory: Path | None = None) -> list[tuple[str, list[dict] | None, dict]]:
    """(file name, table rows or None, other top-level fields) for each readable bench/results/*.json."""
    directory = RESULTS_DIR if directory is None else directory
    out = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        rows, meta = _rows_and_meta(data)
        out.append((path.name, rows, meta))
    return out


GPU_WORDS = ("nvidia", "cuda", "gpu", "h100", "h200", "a100", "l40", "rtx", "instinct", "mi300")


def on_gpu(name: str, meta: dict) -> bool:
    """Whether a stored result was measured on a GPU (its device names one, or its file says so).

    bench/bench_moe.py records `machine.device` as the CUDA device's name on a GPU and as the CPU's
    architecture ("x86_64") otherwise.
    """
    device = str(meta.get("machine.device", meta.get("device", ""))).lower()
    return any(word in device for word in GPU_WORDS) or any(word in name.lower() for word in ("gpu", "cuda"))


def _flat_scalars(data: dict, prefix: str = "") -> dict:
    """Top-level scalars, and those one level down as "machine.device" (bench_moe.py's layout)."""
    out = {}
    for key, value in data.items():
        if isinstance(value, dict) and not prefix:
            out.update(_flat_scalars(value, f"{key}."))
        elif not isinstance(value, (list, dict)):
            out[f"{prefix}{key}"] = value
    return out


def _rows_and_meta(data: object) -> tuple[list[dict] | None, dict]:
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return data, {}
    if isinstance(data, dict):
        for key in ("rows", "results", "table", "data", "measurements"):
            value = data.get(key)
            if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
                return value, _flat_scalars({k: v for k, v in data.items() if k != key})
        return None, _flat_scalars(data)
    return None, {"value": data}


# --- the panel -----------------------------------------------------------------------------


@st.cache_data(max_entries=48, show_spinner=False)
def _timed(backend: str, tokens: int, experts: int, top_k: int) -> dict:
    """Cached by settings (and backend): a second press, or another learner, gets it at once."""
    return time_backend(backend, tokens, experts, top_k).as_dict()


@st.fragment(key=BENCH)
def bench_panel() -> None:
    """The `live_benchmark` widget: settings, a button with progress, the table, GPU results."""
    with st.container(border=True):
        c = st.columns(3)
        args = [("experts_bench_tokens", "benchmark tokens T", BENCH_TOKENS),
                ("experts_bench_experts", "benchmark experts E", BENCH_EXPERTS),
                ("experts_bench_k", "benchmark k", BENCH_K)]  # fmt: skip
        values = [col.select_slider(label, opts, key=key, on_change=_changed, args=(key,))
                  for col, (key, label, opts) in zip(c, args, strict=True)]  # fmt: skip
        tokens, experts, top_k = (int(v) for v in values)
        _notices(*(a[0] for a in args))
        _flops_table(tokens, experts, top_k)
        settings = (tokens, experts, top_k)
        results = st.session_state.setdefault("experts_bench_results", {})
        prediction = pr.load_prediction("bench_fastest")
        if prediction is not None:
            predict(3, "bench_fastest", prediction.question, prediction.options)
        if st.button("Run the benchmark", key="experts_bench_run", icon=":material/timer:"):
            progress = st.progress(0.0, text="Starting…")
            try:
                rows = []
                for i, backend in enumerate(BACKENDS):
                    text = f"Timing the {BACKENDS[backend]} ({i + 1} of 3)…"
                    progress.progress(i / len(BACKENDS), text=text)
                    rows.append(_timed(backend, *settings))
            except Exception as exc:  # a failing path must not take the page down with it
                logging.getLogger(__name__).exception("benchmark failed")
                progress.empty()
                st.error(f"The benchmark stopped: {type(exc).__name__}: {exc}. The rest of the page works.")
            else:
                done = f"Finished: 3 of 3 timed for T = {tokens}, E = {experts}, k = {top_k}."
                progress.progress(1.0, text=done)
                results[settings] = rows
        if settings in results:
            _show_timings(results[settings], tokens, experts, top_k)
            if prediction is not None:
                _reveal_fastest(prediction, results[settings])
        else:
            st.caption("Press the button to time the three paths for these settings (a few seconds).")
        _stored_results()
        write_url(experts_bench_tokens=tokens, experts_bench_experts=experts, experts_bench_k=top_k)


def _flops_table(tokens: int, experts: int, top_k: int) -> None:
    f = flops(tokens, experts, top_k)
    sparse = f["sparse (k experts per token)"]
    table = pd.DataFrame({"forward FLOPs": [f"{v:,.0f}" for v in f.values()],
                          "× the sparse layer": [f"{v / sparse:.3g}" for v in f.values()]},
                         index=list(f))  # fmt: skip
    st.markdown(f"**FLOPs of this layer** (D = 64, F = 128): the sparse layer does k/E = {top_k}/{experts} "
                "of the work of running every expert.")  # fmt: skip
    st.dataframe(table)


def _show_timings(rows: list[dict], tokens: int, experts: int, top_k: int) -> None:
    sparse_flops = flops(tokens, experts, top_k)["sparse (k experts per token)"]
    labels: list[str] = []
    ms: list[float] = []
    notes: list[str] = []
    table: list[dict] = []
    for r in rows:
        name = BACKENDS[r["backend"]]
        if r["error"]:
            st.warning(f"{name}: {r['error']}")
            continue
        note = "interpreter" if r["interpreted"] else ""
        speed = "— (interpreter: not kernel speed)" if note else \
            f"{sparse_flops * r['tokens'] / tokens / (r['ms_min'] * 1e6):.2f}"  # fmt: skip
        table.append({"path": name, "device": r["device"] + (" (Triton interpreter)" if note else ""),
                      "tokens run": r["tokens"], "median ms": round(r["ms_median"], 3),
                      "best ms": round(r["ms_min"], 3), "runs": r["reps"], "GFLOP/s (best)": speed,
                      "max |Δ| vs sorted torch": f"{r['max_abs_diff']:.1e}"})  # fmt: skip
        if not note:  # the interpreter's time is not a speed: it stays out of the speed chart
            labels.append(name)
            ms.append(r["ms_min"])
            notes.append(note)
    st.table(pd.DataFrame(table).set_index("path"))  # three rows: a static, screen-reader friendly table
    if labels:
        ref = labels.index(BACKENDS["torch"]) if BACKENDS["torch"] in labels else None
        title = "Best time per call (× the sorted path)"
        fig = charts.bench_bars(labels, ms, notes, reference=ref, title=title)
        parts = [f"{label} {t:.3g} ms" + (f" ({t / ms[ref]:.2f}× the sorted path)" if ref is not None else "")
                 for label, t in zip(labels, ms, strict=True)]  # fmt: skip
        show_chart(fig, key="experts_bench_chart", summary="Best time per call: " + "; ".join(parts) + ".")
    interp = next((r for r in rows if r["interpreted"] and not r["error"]), None)
    if interp:
        agree = "matches" if interp["max_abs_diff"] < 1e-4 else "DOES NOT match"
        st.info(f"No CUDA GPU here, so the Triton kernel ran in Triton's **interpreter** on "
                f"{interp['tokens']} tokens (at most {INTERPRETER_TOKENS}): its time is Python stepping "
                f"through every program, not kernel speed. Its result {agree} "
                f"the torch path (largest difference {interp['max_abs_diff']:.1e}).",
                icon=":material/info:")  # fmt: skip
    st.caption("On a CPU the Triton time measures the interpreter, not the kernel.")


def _reveal_fastest(prediction: pr.Prediction, rows: list[dict]) -> None:
    """Whether the learner's guess of the fastest path held, from the best times just measured."""
    ms = {r["backend"]: r["ms_min"] for r in rows if not r["error"]}
    if not ms:
        return
    outcome = pr.fastest_outcome(ms)
    best = min(ms, key=ms.__getitem__)
    times = ", ".join(f"{BACKENDS[b]} {t:.3g} ms" for b, t in ms.items())
    live = (f"Measured here: {times}; the fastest was the {BACKENDS[best]}, "
            f"{max(ms.values()) / ms[best]:.3g}× faster than the slowest.")  # fmt: skip
    if any(r["interpreted"] for r in rows):
        live += " The Triton time here is the interpreter's."
    reveal(3, "bench_fastest", prediction.options[outcome], f"{prediction.why}\n\n{live}")


def _stored_results() -> None:
    found = stored_results()
    gpu = [f for f in found if on_gpu(f[0], f[2])]
    cpu = [f for f in found if not on_gpu(f[0], f[2])]
    with st.expander("Measured on a real GPU (bench/results)", expanded=bool(gpu)):
        if not gpu:
            st.caption("No GPU measurements are stored yet: `bench/results/*.json` gets them from "
                       "`bench/bench_moe.py` on a CUDA machine. Until then, judge the kernel by its "
                       "agreement with the torch path, not by its CPU time.")  # fmt: skip
        for result in gpu:
            _show_stored(*result)
        if cpu:
            st.markdown("**Stored CPU measurements** (`bench/bench_moe.py` on a CPU; Triton only checked):")
            for result in cpu:
                _show_stored(*result)


def _show_stored(name: str, rows: list[dict] | None, meta: dict) -> None:
    about = ", ".join(f"{k}: {v}" for k, v in meta.items())
    st.markdown(f"**{md_escape(name)}**" + (f" · {md_escape(about)}" if about else ""))
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    elif not meta:
        st.caption("(no table in this file)")


def _notices(*keys: str) -> None:
    show_stored_notices("experts_notices", *keys)


def _changed(key: str) -> None:
    forget_notice_and_rerun("experts_notices", key, [BENCH])
