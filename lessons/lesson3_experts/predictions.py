"""Lesson 3's predict-then-try questions: their text (Markdown) and their outcomes (live results).

Each question lives in `lessons/content/lesson3/predict_<key>.md`: a `**Question.**` paragraph, the
options as a bullet list (in the order the outcome functions below return them), and a `**Why.**`
paragraph shown after the reveal. The outcome functions are pure: the lesson's live numbers in,
the index of the option that happened out, so they are tested without Streamlit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from lessons.course.text import lesson_dir, read_text
from moe_core.dispatch import expert_capacity

PADDING_GROWS, PADDING_SHRINKS, PADDING_SAME = 0, 1, 2
DROP_BUSIEST, DROP_EVENLY, DROP_LEAST, DROP_NONE = 0, 1, 2, 3
FASTEST_LOOP, FASTEST_SORTED, FASTEST_TRITON, FASTEST_TIE = 0, 1, 2, 3
TIE = 0.10  # "within 10% of each other"


@dataclass(frozen=True)
class Prediction:
    question: str
    options: tuple[str, ...]
    why: str


def load_prediction(key: str) -> Prediction | None:
    """The question, options and explanation of `predict_<key>.md`, or None if not readable."""
    text = read_text(lesson_dir(3) / f"predict_{key}.md")
    if text is None:
        return None
    question = re.search(r"\*\*Question\.\*\*\s*(.+?)\n\s*\n", text, re.S)
    why = re.search(r"\*\*Why\.\*\*\s*(.+)", text, re.S)
    options = tuple(m.strip() for m in re.findall(r"^- (.+)$", text, re.M))
    if not (question and why and len(options) >= 2):
        return None
    return Prediction(question.group(1).strip(), options, why.group(1).strip())


def padded_rows(counts: Sequence[int], block: int) -> int:
    """Rows after padding each expert's segment up to a multiple of `block`."""
    return sum(math.ceil(n / block) * block for n in counts)


def padding_outcome(counts: Sequence[int], small: int = 16, large: int = 64) -> int:
    """Which option happened when the block size went from `small` to `large` on these counts."""
    n = sum(counts)
    before, after = padded_rows(counts, small) - n, padded_rows(counts, large) - n
    return PADDING_GROWS if after > before else PADDING_SHRINKS if after < before else PADDING_SAME


def first_droppers(counts: Sequence[int], tokens: int, top_k: int, lo: float = 1.0, hi: float = 2.0,
                   step: float = 0.05) -> tuple[float | None, list[int]]:  # fmt: skip
    """Lower CF from `hi` to `lo` in `step`s: the first CF at which some expert drops, and which."""
    experts = len(counts)
    for i in range(round((hi - lo) / step) + 1):
        cf = round(hi - i * step, 10)
        c = expert_capacity(tokens, top_k, experts, cf)  # the same C as the live panel
        over = [e for e, n in enumerate(counts) if n > c]
        if over:
            return cf, over
    return None, []


def capacity_outcome(counts: Sequence[int], tokens: int, top_k: int) -> int:
    """Which option happened as the capacity factor fell from 2.0 to 1.0 on these counts."""
    _, over = first_droppers(counts, tokens, top_k)
    if not over:
        return DROP_NONE
    top, low = max(counts), min(counts)
    if len(over) == len(counts):
        return DROP_EVENLY
    if all(counts[e] == top for e in over):
        return DROP_BUSIEST
    return DROP_LEAST if all(counts[e] == low for e in over) else DROP_EVENLY


def fastest_outcome(ms: dict[str, float]) -> int:
    """Which option happened: the backend ("loop", "torch", "triton") with the least time per
    call, or a tie when the slowest is within `TIE` of the fastest. Missing backends are skipped."""
    ran = {b: t for b, t in ms.items() if t == t and t > 0}  # NaN: the path did not run
    if not ran:
        raise ValueError("no backend ran")
    if len(ran) == 3 and max(ran.values()) <= (1 + TIE) * min(ran.values()):
        return FASTEST_TIE
    best = min(ran, key=ran.__getitem__)
    return {"loop": FASTEST_LOOP, "torch": FASTEST_SORTED, "triton": FASTEST_TRITON}[best]
