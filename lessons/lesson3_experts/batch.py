"""Lesson 3's live batch: the tokens and routing every panel draws, and the panels' shared keys.

The batch is real: two held-out sequences of the course's language model, a code passage and a prose
passage, T/2 tokens from each (a [2, T/2] batch flattened, as a serving engine flattens it), routed
top-k by the model's first MoE layer. T and k come from the page's sliders. Kept apart from the
page (`__init__.py`) so the kernel-source panel (`kernel_view.py`) and the page share it without
importing each other.
"""

from __future__ import annotations

import html
from functools import lru_cache

import numpy as np
import streamlit as st
import torch

from lessons.course.lm_view import heldout_sample, route_text
from lessons.course.url_state import forget_notice_and_rerun, show_stored_notices
from moe_core.dispatch import Dispatch, align_block_size
from moe_core.router import softmax_topk

DISPATCH, BLOCKS, TILES, CAPACITY = "experts_dispatch", "experts_blocks", "experts_tiles", "experts_capacity"
HERO, KERNEL = "experts_hero", "experts_kernel"
BATCH_PANELS = [HERO, DISPATCH, BLOCKS, TILES, CAPACITY, KERNEL]  # everything drawn from the live batch
# The expander around the kernel's deep dive (its widget key). Closed, the KERNEL panel is not built.
KERNEL_DIVE = "experts_dive_reading_kernel"


def notices(*keys: str) -> None:
    show_stored_notices("experts_notices", *keys)


def changed(key: str, panels: list[str]) -> None:
    """Widget callback: rerun `panels`, leaving out KERNEL while its deep dive is closed (a closed
    dive's panel is not on the page, and Streamlit refuses to rerun a fragment it has not drawn)."""
    drawn = [p for p in panels if p != KERNEL or st.session_state.get(KERNEL_DIVE)]
    forget_notice_and_rerun("experts_notices", key, drawn)


LAYER = 0  # the first MoE layer: its router logits depend on the text alone, not on earlier routing
MAX_TOKENS = 96  # the T slider's maximum: 48 tokens from each sequence


def shown_token(token: str) -> str:
    """A token as a learner can read it in a label or a code span: spaces, newlines and tabs made
    visible (BPE tokens often start with a space), backticks swapped for a look-alike."""
    return token.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥").replace("`", "ˋ") or "∅"


def batch_pairs() -> list[str]:
    """The batches a learner can pick: the i-th held-out code passage with the i-th prose passage."""
    sample = heldout_sample()
    count = min(len(sample.get("code", [])), len(sample.get("prose", [])), 3)
    return [f"{sample['code'][i]['name']} + {sample['prose'][i]['name']}" for i in range(count)]


@st.cache_data(max_entries=3, show_spinner=False)
def example_batch(pair: int = 0) -> tuple[tuple[list[str], np.ndarray], tuple[list[str], np.ndarray]]:
    """(tokens, layer-1 router logits [T, E]) of held-out code passage `pair` and prose passage
    `pair`, each encoded in its own context."""
    sample = heldout_sample()
    sequences = []
    for genre in ("code", "prose"):
        routed = route_text(sample[genre][pair]["text"][:2000])
        half = MAX_TOKENS // 2
        sequences.append((routed.tokens[:half], routed.router_logits[LAYER][:half]))
    return sequences[0], sequences[1]


def live_batch() -> tuple[list[str], torch.Tensor, list[str]]:
    """Tokens [T] (as shown), topk_ids [T, K] and a label per slot, for the page's batch, T and k."""
    return batch_for(int(st.session_state["experts_tokens"]), int(st.session_state["experts_k"]),
                     int(st.session_state.get("experts_batch", 0)))  # fmt: skip


def batch_for(tokens: int, top_k: int, pair: int = 0) -> tuple[list[str], torch.Tensor, list[str]]:
    """Tokens [T] (as shown), topk_ids [T, K] and a label per slot, for T tokens routed top-k.

    Fresh lists and tensor per call (cheap copies of a cached result): a panel may change them."""
    words, ids, labels = _routed_batch(tokens, top_k, pair)
    return list(words), ids.clone(), list(labels)


RoutedBatch = tuple[tuple[str, ...], torch.Tensor, tuple[str, ...]]


# A change of T or k reruns five panels (six with the deep dive open), each asking for the same
# batch: 7 routings per move before this cache, 5.5 ms of the 71 ms median (bench_app, real
# server). The inputs are three small integers.
@lru_cache(maxsize=64)
def _routed_batch(tokens: int, top_k: int, pair: int) -> RoutedBatch:
    (code, code_logits), (prose, prose_logits) = example_batch(pair)
    half = tokens // 2
    words = [shown_token(t) for t in code[:half] + prose[: tokens - half]]
    logits = np.concatenate([code_logits[:half], prose_logits[: tokens - half]])
    ids = softmax_topk(torch.from_numpy(logits), top_k).topk_ids
    labels = [f"token {s // top_k} “{html.escape(words[s // top_k])}”, choice {s % top_k + 1}"
              for s in range(tokens * top_k)]  # fmt: skip
    return tuple(words), ids, tuple(labels)


def live_dispatch() -> tuple[Dispatch, torch.Tensor, list[str]]:
    """The live batch's dispatch at the page's block size, its topk_ids [T, K] and slot labels.

    The Dispatch is shared between the panels of a rerun (read it, never change it)."""
    tokens, top_k = int(st.session_state["experts_tokens"]), int(st.session_state["experts_k"])
    pair, block = int(st.session_state.get("experts_batch", 0)), int(st.session_state["experts_block"])
    _, ids, labels = batch_for(tokens, top_k, pair)
    return _aligned(tokens, top_k, pair, block), ids, labels


# A move of T, k or the block size reruns three panels that each align the same batch (5 % of a
# move's server time, py-spy). One entry: the next move has new inputs anyway.
@lru_cache(maxsize=1)
def _aligned(tokens: int, top_k: int, pair: int, block: int) -> Dispatch:
    return align_block_size(_routed_batch(tokens, top_k, pair)[1], batch_num_experts(), block)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


@lru_cache(maxsize=1)
def batch_num_experts() -> int:
    """E of the course model's first MoE layer. Cached here: `example_batch` is an st.cache_data
    function, and each call of one unpickles a fresh copy of its result (both passages' logits)."""
    return int(example_batch()[0][1].shape[1])


def valid_rows(d: Dispatch) -> np.ndarray:
    """Real (non-padding) rows of each M-block."""
    real = (d.sorted_slot_ids < d.num_slots).reshape(-1, d.block_size)
    return real.sum(1).numpy()
