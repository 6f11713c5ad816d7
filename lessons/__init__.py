"""MoE Lab course: lesson text, quizzes, figures, progress storage and the pages' logic."""

import os

import torch

# One torch thread per server process: the lesson models are tiny, and on a small shared machine
# OpenMP's spinning threads turned 0.1 ms ops into 20-40 ms ones once several learners were active.
# MOE_LAB_TORCH_THREADS overrides it for a big dedicated host.
torch.set_num_threads(int(os.environ.get("MOE_LAB_TORCH_THREADS", "1")))
