"""The course's real language model on a learner's text: cleaning the text, routing it, drawing it.

Lessons 1 and 2 both show the shipped `moe_core.lm.MoELM` (a small Mixtral trained here on Python's
standard library and its documentation), so what they share lives here and not in either lesson.

- `clean_text` turns anything a learner can paste (empty, 10,000 characters, emoji, control
  characters, HTML) into text the model can take plus notices to show; it never raises.
- `route_text` runs the model once per (text, routing settings) and is cached per text.
- `passage_html` draws a passage with every token coloured by its top-1 expert, one row per layer
  (the style of Mixtral's Figure 8). Each token is escaped with `html.escape` before it is put in
  the markup, so a learner's `<script>` or `<b>` is shown as text (checked by the tests); the
  markup itself is built here from fixed strings only.
"""

from __future__ import annotations

import html
import json
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from lessons.course.figures import PALETTE
from moe_core.lm import SHIPPED, MoELM, load_tokenizer
from moe_core.routing_probe import RoutingSettings, forward_with_routing, next_token_bits

MAX_CHARS = 2000  # characters of a learner's text the model reads (≈ 600 tokens; a 2-core server)
SHOWN_TOKENS = 64  # tokens drawn in the coloured passage; the statistics use all of them
LM_PATH_ENV = "MOE_LAB_LM"  # another checkpoint folder (a Hugging Face Mixtral), for development


def lm_path() -> Path:
    return Path(os.environ.get(LM_PATH_ENV) or SHIPPED)


def lm_available() -> bool:
    """Whether the checkpoint folder is there (a clone without it still teaches the rest)."""
    return (lm_path() / "model.safetensors").exists() and (lm_path() / "config.json").exists()


@st.cache_resource(show_spinner="Loading the course's language model…")
def get_lm() -> tuple[MoELM, object]:
    """The shipped model and its tokenizer, one copy per process, inference only, never mutated."""
    path = lm_path()
    model = MoELM.from_pretrained(path).eval()
    return model, load_tokenizer(path)


@st.cache_resource(show_spinner=False)
def get_untrained_lm() -> MoELM:
    """The same architecture with random weights (seed 0): the baseline every routing statistic
    needs, because an untrained router already routes by token identity (DESIGN.md)."""
    trained, _ = get_lm()
    torch.manual_seed(0)
    return MoELM(trained.config).eval()


@st.cache_data(show_spinner=False)
def heldout_sample() -> dict[str, list[dict[str, str]]]:
    """Held-out passages shipped beside the checkpoint: {"code": [{name, text}], "prose": [...]}."""
    path = lm_path() / "heldout_sample.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def example_passages() -> dict[str, str]:
    """A few held-out passages to pick from, labelled by genre and source file."""
    passages: dict[str, str] = {}
    for genre, docs in heldout_sample().items():
        for doc in docs[:3]:
            passages[f"{genre}: {doc['name']}"] = doc["text"][:MAX_CHARS]
    return passages


# --- learner text --------------------------------------------------------------------------------


def clean_text(raw: str | None, limit: int = MAX_CHARS) -> tuple[str, list[str]]:
    """Text the model can read, and plain-English notices about what was changed."""
    notices: list[str] = []
    text = raw or ""
    # Control characters other than newline and tab carry nothing a reader sees; drop them.
    kept = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")
    if len(kept) != len(text):
        notices.append(f"{len(text) - len(kept)} control character(s) were removed.")
    if len(kept) > limit:
        notices.append(f"Only the first {limit:,} of {len(kept):,} characters are read by the model.")
        kept = kept[:limit]
    if not kept.strip():
        notices.append("Type or pick some text: the model needs at least two tokens to route.")
    return kept, notices


@dataclass(frozen=True)
class RoutedText:
    tokens: list[str]  # the text of each token, as the learner typed it
    top1_LT: np.ndarray  # [layers, T] top-1 expert of each token
    router_logits: list[np.ndarray]  # per layer [T, E]
    bits: float | None  # next-token loss in bits per token (None under two tokens)


def route_text(text: str, top_k: int = 2, temperature: float = 1.0, trained: bool = True,
               noise_std: float = 0.0) -> RoutedText:  # fmt: skip
    """Route `text` through the trained (or untrained) model with the given settings (noise from
    a fixed seed, so one slider position always gives the same routing).

    st.cache_data keys on how arguments are passed: route_text(t) and route_text(t, top_k=2) were
    two entries, so the warm-up's call never served a page's. One canonical call behind it."""
    return _route_text(text, int(top_k), float(temperature), bool(trained), float(noise_std))


@st.cache_data(max_entries=64, show_spinner=False)
def _route_text(text: str, top_k: int, temperature: float, trained: bool, noise_std: float) -> RoutedText:
    model, tok = get_lm()
    if not trained:
        model = get_untrained_lm()
    enc = tok.encode(text, add_special_tokens=False)
    ids = torch.tensor([enc.ids], dtype=torch.long)
    tokens = [text[a:b] for a, b in enc.offsets]
    if ids.shape[1] == 0:
        return RoutedText([], np.zeros((len(model.layers), 0), dtype=np.int64), [], None)
    settings = RoutingSettings(top_k=top_k, temperature=temperature, noise_std=noise_std)
    out = forward_with_routing(model, ids, settings)
    top1 = np.stack([t[:, 0].numpy() for t in out.topk_ids])
    bits = next_token_bits(out.logits, ids) if ids.shape[1] >= 2 else None
    return RoutedText(tokens, top1, [r.numpy() for r in out.router_logits], bits)


# --- drawing ---------------------------------------------------------------------------------------


def _tint(hex_colour: str, amount: float = 0.55) -> str:
    """Mix a palette colour with white so dark text on it stays readable (contrast ≥ 4.5:1)."""
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    mix = [round(c + (255 - c) * amount) for c in (r, g, b)]
    return "#" + "".join(f"{c:02X}" for c in mix)


EXPERT_TINTS = tuple(_tint(c) for c in PALETTE)


# One small style sheet per passage, and a class per token: 256 spans with their own inline styles
# (4 layers x 64 tokens) took 0.18 s of the browser's main thread on Lesson 2 (style parsing and
# sanitising per span); shared classes leave the browser one rule per expert.
_PASSAGE_CSS = (
    ".moe-lm-row{font-family:monospace;font-size:0.85rem;line-height:1.9;margin-bottom:4px}"
    ".moe-lm-row b{display:inline-block;width:4.5em}"
    # inline-block: the row wraps between tokens, never inside one
    ".moe-lm-tok{color:#111;white-space:pre;display:inline-block;border-radius:3px;padding:0 1px;margin:1px}"
    ".moe-lm-key{color:#111;padding:0 6px;margin-right:4px;border-radius:3px}"
    + "".join(f".moe-lm-e{e}{{background:{tint}}}" for e, tint in enumerate(EXPERT_TINTS))
)


def _token_span(token: str, expert: int, layer: int) -> str:
    shown = html.escape(token.replace("\n", "⏎").replace("\t", "⇥"), quote=True) or "&nbsp;"
    tip = f"layer {layer + 1}: expert {expert}"
    return f'<span title="{tip}" class="moe-lm-tok moe-lm-e{expert % 8}">{shown}</span>'


def passage_html(routed: RoutedText, limit: int = SHOWN_TOKENS) -> str:
    """One row per layer; each token's background is its top-1 expert (legend first)."""
    legend = "".join(f'<span class="moe-lm-key moe-lm-e{e}">expert {e}</span>'
                     for e in range(len(EXPERT_TINTS)))  # fmt: skip
    rows = [f"<style>{_PASSAGE_CSS}</style>",
            f'<div style="margin-bottom:6px;font-size:0.85rem">{legend}</div>']  # fmt: skip
    for layer, experts in enumerate(routed.top1_LT):
        spans = "".join(_token_span(t, int(e), layer)
                        for t, e in zip(routed.tokens[:limit], experts[:limit], strict=False))  # fmt: skip
        rows.append(f'<div class="moe-lm-row"><b>Layer {layer + 1}</b>{spans}</div>')
    return "".join(rows)


def passage_summary(routed: RoutedText, limit: int = SHOWN_TOKENS) -> str:
    """The text alternative of `passage_html`: what a sighted learner reads off the colours."""
    if not routed.tokens:
        return "No tokens to route."
    parts = []
    for layer, experts in enumerate(routed.top1_LT):
        counts = np.bincount(experts, minlength=8)
        top = int(counts.argmax())
        parts.append(f"layer {layer + 1}: expert {top} takes {counts[top]} of {len(experts)} tokens")
    shown = min(limit, len(routed.tokens))
    head = f"{len(routed.tokens)} tokens ({shown} drawn); most-used top-1 expert per "
    return head + "; ".join(parts) + "."
