"""`moe_core` owns Triton's interpreter choice whatever imports Triton first (issue 18, item 3).

Each case runs in a fresh Python (the mode is process-wide and fixed when Triton decorates its
functions) with `TRITON_INTERPRET` unset, imports the offending library in the order a real
program did, then runs `fused_moe(..., backend="triton")` on CPU tensors and compares it with the
torch backend. `torch.optim.Adam` is the culprit the app met: constructing any optimizer imports
`torch._dynamo`, which imports `triton` (Lesson 5 trains with one).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="the interpreter is the CPU path")

RUN = """
import os, sys, torch
T, D, F, E = 12, 16, 32, 4
g = torch.Generator().manual_seed(0)
x = torch.randn(T, D, generator=g)
w1 = torch.randn(E, 2 * F, D, generator=g) / D**0.5
w2 = torch.randn(E, D, F, generator=g) / F**0.5
logits = torch.randn(T, E, generator=g)
ref = moe_core.fused_moe(x, w1, w2, logits, 2, backend="torch")
out = moe_core.fused_moe(x, w1, w2, logits, 2, backend="triton")
torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)  # fp32 both ways; tl.dot in IEEE fp32
print("OK", os.environ.get("TRITON_INTERPRET"), float((out - ref).abs().max()))
"""


def run_fresh(prelude: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-c", prelude + RUN], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


OPTIMIZER = "torch.optim.Adam(torch.nn.Linear(2, 2).parameters())  # imports torch._dynamo -> triton\n"


@pytest.mark.parametrize(
    "prelude",
    [
        # The app's order: moe_core at start-up, Lesson 5's optimizer later, Lesson 3's kernel last.
        "import torch, moe_core\n" + OPTIMIZER,
        # A library imported Triton in compiled mode before moe_core existed.
        "import torch\n" + OPTIMIZER + "import moe_core\n",
        "import triton, triton.language\nimport moe_core\n",
    ],
    ids=["optimizer-after-moe_core", "optimizer-before-moe_core", "plain-triton-first"],
)
def test_triton_path_runs_in_the_interpreter_whatever_imported_triton_first(prelude: str) -> None:
    result = run_fresh(prelude)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("OK 1 "), result.stdout


def test_import_sets_the_interpreter_without_importing_triton() -> None:
    code = "import os, sys, moe_core\nprint('triton' in sys.modules, os.environ.get('TRITON_INTERPRET'))\n"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(REPO)}, cwd=REPO,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.stdout.split() == ["False", "1"], result.stderr[-2000:]


def test_a_users_choice_is_kept() -> None:
    code = "import os, moe_core\nprint(os.environ['TRITON_INTERPRET'])\n"
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO),
                            "TRITON_INTERPRET": "0"}, cwd=REPO, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.stdout.strip() == "0", result.stderr[-2000:]
