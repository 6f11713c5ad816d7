"""Lesson 2: what the experts of the real language model learn, measured on held-out text.

Reads the report `python -m moe_core.lm_report` wrote beside the shipped checkpoint (routing the
held-out passages takes seconds; the numbers never change for a given checkpoint, and a test
recomputes them). Every figure of the trained model is shown beside the same figure for the same
architecture untrained and for a shuffled-label control, so noise is not read as structure.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from lessons.course.charts import show_chart
from lessons.course.lm_view import lm_path
from lessons.course.url_state import url_number, write_url
from lessons.lesson2_router import figures as charts
from moe_core.lm_report import REPORT_FILE


@st.cache_data(show_spinner=False)
def load_report() -> dict | None:
    path = lm_path() / REPORT_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _rows(report: dict, layer: int) -> pd.DataFrame:
    t, u = report["trained"], report["untrained"]
    rows = {
        "genre → expert (bits)": (t["genre_mi"], t["genre_mi_control"], u["genre_mi"]),
        "token class → expert (bits)": (t["class_mi"], t["class_mi_control"], u["class_mi"]),
        "next token keeps its expert": (t["same_expert_rate"], t["chance_rate"], u["same_expert_rate"]),
    }
    return pd.DataFrame(
        [[values[0][layer], values[1][layer], values[2][layer]] for values in rows.values()],
        index=list(rows), columns=["trained model", "shuffled / chance", "untrained model"],
    ).round(3)


def verdict(report: dict, layer: int) -> str:
    """One sentence per figure, computed from the report: what this layer's router follows."""
    t, u = report["trained"], report["untrained"]
    genre, genre_ctl = t["genre_mi"][layer], t["genre_mi_control"][layer]
    cls, cls_ctl, cls_u = t["class_mi"][layer], t["class_mi_control"][layer], u["class_mi"][layer]
    same, chance = t["same_expert_rate"][layer], t["chance_rate"][layer]
    genre_part = (
        f"the genre (code or prose) tells **{genre:.3f} bits** about the top-1 expert, against "
        f"{genre_ctl:.3f} bits when the genres of whole passages are shuffled"
    )
    class_part = (
        f"the kind of token (whitespace, punctuation, digit, identifier, word) tells **{cls:.3f} bits**, "
        f"against {cls_ctl:.3f} shuffled and {cls_u:.3f} for the untrained model"
    )
    same_part = (f"consecutive tokens keep their expert **{same:.0%}** of the time, against "
                 f"{chance:.0%} by chance")  # fmt: skip
    head = f"In layer {layer + 1}, on {report['tokens']:,} held-out tokens"
    return f"{head}: {genre_part}; {class_part}; {same_part}."


def what_experts_learn_panel() -> None:
    report = load_report()
    if report is None:
        st.info("The routing report of the course's language model is not installed in this copy.")
        return
    layers = len(report["trained"]["genre_mi"])
    st.session_state.setdefault("router_lm_layer", url_number("router_lm_layer", 1, 1, layers).value)
    with st.container(border=True):
        layer = st.slider("Layer", 1, layers, key="router_lm_layer") - 1
        write_url(router_lm_layer=layer + 1)
        st.markdown(verdict(report, layer))
        st.table(_rows(report, layer))  # 3 × 3: a static table, no grid to mount
        t = report["trained"]
        left, right = st.columns(2)
        with left:
            share = t["genre_share"][layer]
            show_chart(charts.share_heatmap(share, t["genre_labels"], title="Genre → top-1 expert"),
                       key="router_lm_genre_chart", summary=_share_summary(share, t["genre_labels"]),
                       data=pd.DataFrame(share, index=t["genre_labels"]).round(3))  # fmt: skip
        with right:
            share = t["class_share"][layer]
            show_chart(charts.share_heatmap(share, t["class_labels"], title="Token class → top-1 expert"),
                       key="router_lm_class_chart", summary=_share_summary(share, t["class_labels"]),
                       data=pd.DataFrame(share, index=t["class_labels"]).round(3))  # fmt: skip


def _share_summary(share: list[list[float]], rows: list[str]) -> str:
    parts = []
    for label, row in zip(rows, share, strict=True):
        top = max(range(len(row)), key=row.__getitem__)
        parts.append(f"{label}: {row[top]:.0%} to expert {top}")
    return "Largest share per row — " + "; ".join(parts) + "."
