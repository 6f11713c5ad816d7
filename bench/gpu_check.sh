#!/usr/bin/env bash
# One command for a GPU machine: install what is missing, run the test suite with CUDA visible,
# run the GPU benchmark, and write every table to bench/out/. Safe to dry-run on a CPU: it says
# clearly that no GPU is present and stops after the engine tests.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench/out}
mkdir -p "$out"
log() { echo "[gpu_check] $*" | tee -a "$out/gpu_check.log"; }

python=${PYTHON:-python3}
log "python: $($python --version 2>&1)"
# The GPU image brings its own torch/triton (no network there): install only what is missing,
# never replace torch.
for pkg in numpy pytest transformers; do
  $python -c "import $pkg" 2>/dev/null || $python -m pip install -q "$pkg" 2>&1 | tail -1 | tee -a "$out/gpu_check.log"
done
$python - <<'PY' | tee "$out/versions.txt"
import torch
try:
    import triton; tv = triton.__version__
except ImportError:
    tv = None
print(f"torch {torch.__version__}  triton {tv}  cuda {torch.version.cuda}")
print("device:", torch.cuda.get_device_name() if torch.cuda.is_available() else "NO GPU PRESENT")
PY

if ! $python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  log "NO GPU PRESENT: this is a dry run. Running the engine tests on the CPU only."
  $python -m pytest tests/engine -q -x -p no:cacheprovider 2>&1 | tail -5 | tee "$out/tests_engine.txt"
  log "dry run finished: on a CUDA machine this script also runs the gpu tests and bench_moe.py --gpu-suite"
  exit 0
fi

log "running engine tests (incl. gpu-marked) with CUDA visible"
$python -m pytest tests/engine -q -p no:cacheprovider -rs 2>&1 | tail -30 | tee "$out/tests_engine.txt"
status=${PIPESTATUS[0]}
log "running bench_moe.py --gpu-suite --backward"
$python bench/bench_moe.py --gpu-suite --backward --json "$out/bench_gpu.json" 2>&1 | tee "$out/bench_gpu.md"
log "done (tests exit status $status); tables in $out/"
exit "$status"
