"""Expert-compute kernels: the Triton grouped GEMM and its torch reference paths.

`import moe_core` must work without Triton and without CUDA, and Triton decides between its
compiler and its interpreter when a function is *decorated*: `@triton.jit` reads `TRITON_INTERPRET`
as the decorated function's module is imported. That includes Triton's own standard library
(`tl.zeros`, `tl.cdiv`, `tl.sigmoid` are `@triton.jit` functions in `triton.language.standard`), so
the mode of `import triton` — not only of our kernel module — matters, and other libraries import
Triton behind our back: constructing any `torch.optim` optimizer imports `torch._dynamo`, which
imports `triton` (measured with torch 2.13 and triton 3.9; Lesson 5 of the course does exactly this).

So `moe_core` owns the choice, twice:

1. When this package is imported (as part of `import moe_core`; Triton itself is *not* imported),
   if no GPU is present and the user has not set `TRITON_INTERPRET`, it is set to `1`. Anything
   that imports Triton later gets the interpreter.
2. The Triton module is imported lazily, on first use (`load_triton`). If Triton was already
   imported in compiled mode before that choice was made (a library imported it before
   `moe_core`), its standard library's compiled functions are swapped for interpreted ones, so an
   interpreted kernel can call them.

A user can still force either mode by setting the variable before importing `moe_core`.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from types import ModuleType

import torch

_TRITON_MODULE = "moe_core.kernels.triton_moe"
_lock = threading.Lock()  # app sessions run in threads: load (and repair) Triton once


class TritonUnavailable(RuntimeError):
    """The Triton path was asked for but cannot run here."""


def _has_gpu() -> bool:
    xpu = getattr(torch, "xpu", None)  # Triton also compiles for Intel GPUs
    return torch.cuda.is_available() or bool(xpu is not None and xpu.is_available())


def choose_triton_mode() -> None:
    """Turn Triton's interpreter on when no GPU is present and the user has not chosen.

    Only sets an environment variable: never imports Triton.
    """
    if "TRITON_INTERPRET" not in os.environ and not _has_gpu():
        os.environ["TRITON_INTERPRET"] = "1"


choose_triton_mode()  # at `import moe_core`, before any other library can import Triton


def triton_interpreted() -> bool:
    """True when Triton kernels run in the interpreter (CPU) rather than compiled."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def load_triton() -> ModuleType:
    """Import the Triton MoE module, in the mode `choose_triton_mode` picked."""
    with _lock:
        choose_triton_mode()  # the user may have removed the variable since import
        try:
            module = importlib.import_module(_TRITON_MODULE)
        except ImportError as exc:  # triton missing, or a version without the APIs we use
            raise TritonUnavailable(
                "backend='triton' needs the 'triton' package (pip install 'triton>=3.6'); "
                f"import failed: {exc}. The torch backend works without it."
            ) from exc
        if triton_interpreted():
            try:
                _interpret_triton_stdlib()
            except (ImportError, AttributeError, TypeError) as exc:  # a Triton without these internals
                raise TritonUnavailable(
                    "Triton was imported (by another library) before moe_core could turn on its CPU "
                    f"interpreter, and this Triton's helpers could not be switched ({exc}). Set "
                    "TRITON_INTERPRET=1 before starting Python, or use backend='torch'."
                ) from exc
        return module


def _interpret_triton_stdlib() -> int:
    """Swap `triton.language`'s compiled `@jit` helpers for interpreted ones; returns how many.

    Needed when Triton was imported before the interpreter was turned on: those helpers were then
    decorated as compiled `JITFunction`s, which an interpreted kernel cannot call. Each is rebuilt
    from its Python source exactly as `@triton.jit` builds it in interpreter mode, everywhere
    Triton refers to it (the `tl.*` name, its defining module, and `tensor.<name>` methods).
    A no-op when Triton was imported in interpreter mode.
    """
    from triton.language import core
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    swapped: dict[int, InterpretedFunction] = {}
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "triton.language" or name.startswith("triton.language.")):
            continue
        for attr, value in list(vars(module).items()):
            if isinstance(value, JITFunction):
                if id(value) not in swapped:
                    swapped[id(value)] = InterpretedFunction(value.fn)
                setattr(module, attr, swapped[id(value)])
    for attr, value in list(vars(core.tensor).items()):  # x.sum(), x.cdiv(...): member forms
        if isinstance(value, JITFunction) and id(value) in swapped:
            setattr(core.tensor, attr, _member(swapped[id(value)]))
    return len(swapped)


def _member(fn: object):
    """A plain function (so Python binds `self`) that forwards to an interpreted helper."""

    def method(*args, **kwargs):
        return fn(*args, **kwargs)

    return method
