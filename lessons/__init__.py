"""MoE Lab course: the shared frame (`course/`), one folder per lesson, and the writers' text (`content/`)."""

import os
import sys

# One torch thread per server process: the lesson models are tiny, and on a small shared machine
# OpenMP's spinning threads turned 0.1 ms ops into 20-40 ms ones once several learners were active.
# Set through the environment so the home page need not import torch (2 s) just to pin it;
# MOE_LAB_TORCH_THREADS overrides it for a big dedicated host.
_THREADS = os.environ.get("MOE_LAB_TORCH_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", _THREADS)
if "torch" in sys.modules:  # imported before us (tests, notebooks): pin it directly
    sys.modules["torch"].set_num_threads(int(_THREADS))
