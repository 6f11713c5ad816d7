"""Suite-wide markers. Imports nothing of Streamlit so `pytest tests/engine` runs on a GPU box alone."""

from __future__ import annotations

import os

import pytest

try:
    import torch

    _HAS_CUDA = torch.cuda.is_available()
except ImportError:  # pragma: no cover - torch is a hard requirement
    _HAS_CUDA = False


# Other libraries the tests import (transformers) import triton at import time. Triton decorates
# its own helpers (tl.zeros, ...) then, so the interpreter must be chosen before that happens —
# the same choice moe_core makes when it is imported (moe_core.kernels; load_triton also recovers when
# Triton was imported first), set here before any test module can import transformers.
if "TRITON_INTERPRET" not in os.environ and not _HAS_CUDA:
    os.environ["TRITON_INTERPRET"] = "1"

# The lessons build figures without Plotly's validation for speed; under test every figure is
# validated (lessons/charts/common.py), in this process and in the app servers the tests start.
os.environ.setdefault("MOE_LAB_CHECK_FIGURES", "1")
# The server warms every lesson in a background thread (lessons/course/warm_up.py): in the test
# processes it would spawn Lesson 5's 4-process job beside every test; tests/app/course/
# test_warm_up.py checks it on its own, and bench/bench_pages.py measures what it buys.
os.environ.setdefault("MOE_LAB_WARM_UP", "0")


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device (run bench/gpu_check.sh on a GPU machine)")
    for item in items:
        if "tests/engine/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.engine)
        if "gpu" in item.keywords and not _HAS_CUDA:
            item.add_marker(skip_gpu)
