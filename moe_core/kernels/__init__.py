"""Expert-compute kernels: the Triton grouped GEMM and its torch reference paths.

`import moe_core` must work without Triton and without CUDA, and Triton decides between its
compiler and its interpreter when a kernel is *decorated* (it reads `TRITON_INTERPRET` as the
kernel's module is imported). So the Triton module is imported here, lazily, on first use — and
just before, if no CUDA device is present and the user has not chosen, we turn the interpreter on.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

import torch

_TRITON_MODULE = "moe_core.kernels.triton_moe"


class TritonUnavailable(RuntimeError):
    """The Triton path was asked for but cannot run here."""


def triton_interpreted() -> bool:
    """True when Triton kernels run in the interpreter (CPU) rather than compiled."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def load_triton() -> ModuleType:
    """Import the Triton MoE module, choosing interpreter vs compiler first."""
    if "TRITON_INTERPRET" not in os.environ and not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"
    already_imported = "triton" in sys.modules
    try:
        module = importlib.import_module(_TRITON_MODULE)
    except ImportError as exc:  # triton missing, or a version without the APIs we use
        raise TritonUnavailable(
            "backend='triton' needs the 'triton' package (pip install 'triton>=3.6'); "
            f"import failed: {exc}. The torch backend works without it."
        ) from exc
    if already_imported and triton_interpreted() and not _stdlib_interpreted():
        # triton.language's helpers (tl.zeros, tl.cdiv, ...) are @triton.jit functions themselves,
        # decorated in compiled mode when another library imported triton before the
        # interpreter was on; an interpreted kernel cannot call them.
        raise TritonUnavailable(
            "Triton was imported (by another library) before moe_core could turn on its CPU "
            "interpreter. Start Python with TRITON_INTERPRET=1 set, or use backend='torch'."
        )
    return module


def _stdlib_interpreted() -> bool:
    from triton.language import standard

    return type(standard.zeros).__name__ != "JITFunction"
