"""Lesson 3's live batch: the words and routing every panel draws, and the panels' shared keys.

The batch is the example sentences of the course's router demo, routed top-k; T and k come from
the page's sliders. Kept apart from the page (`__init__.py`) so the kernel-source panel
(`kernel_view.py`) and the page share it without importing each other.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from lessons.course.models import get_model
from lessons.course.url_state import forget_notice_and_rerun, show_stored_notices
from moe_core.dispatch import Dispatch, align_block_size
from moe_core.router import softmax_topk
from moe_core.text_data import EXAMPLES

DISPATCH, BLOCKS, TILES, CAPACITY = "experts_dispatch", "experts_blocks", "experts_tiles", "experts_capacity"
HERO, KERNEL = "experts_hero", "experts_kernel"
BATCH_PANELS = [HERO, DISPATCH, BLOCKS, TILES, CAPACITY, KERNEL]  # everything drawn from the live batch


def notices(*keys: str) -> None:
    show_stored_notices("experts_notices", *keys)


def changed(key: str, panels: list[str]) -> None:
    forget_notice_and_rerun("experts_notices", key, panels)


@st.cache_data(max_entries=1, show_spinner=False)
def example_batch() -> tuple[list[str], np.ndarray]:
    """Words and router logits [T, E] of all example sentences, each encoded in its own context."""
    model = get_model()
    words, logits = [], []
    with torch.no_grad():
        for sentence in EXAMPLES.values():
            w, _, x_TD = model.sentence_hidden(sentence)
            words += w
            logits.append(model.moe.router.gate(x_TD))
    return words, torch.cat(logits).numpy()


def live_batch() -> tuple[list[str], torch.Tensor, list[str]]:
    """Words [T], topk_ids [T, K] and a label per slot, for the current T and k."""
    tokens, top_k = int(st.session_state["experts_tokens"]), int(st.session_state["experts_k"])
    words, logits = example_batch()
    ids = softmax_topk(torch.from_numpy(logits[:tokens]), top_k).topk_ids
    labels = [f"token {s // top_k} “{words[s // top_k]}”, choice {s % top_k + 1}"  # words are [a-z]+
              for s in range(tokens * top_k)]  # fmt: skip
    return words[:tokens], ids, labels


def live_dispatch() -> tuple[Dispatch, torch.Tensor, list[str]]:
    _, ids, labels = live_batch()
    return align_block_size(ids, batch_num_experts(), int(st.session_state["experts_block"])), ids, labels


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def batch_num_experts() -> int:
    return get_model().config.num_experts


def valid_rows(d: Dispatch) -> np.ndarray:
    """Real (non-padding) rows of each M-block."""
    real = (d.sorted_slot_ids < d.num_slots).reshape(-1, d.block_size)
    return real.sum(1).numpy()
