"""Lesson 1's first screen: the course's MoE language model continues the learner's text.

The continuation streams in as the model writes it; then the whole text is shown with every token
coloured by the expert that scored it highest, one row per layer — the model's sparse compute,
seen on the learner's own words. Sampling is seeded, so a prompt always gives the same text.
"""

from __future__ import annotations

from collections.abc import Iterator

import streamlit as st
import torch

from lessons.course.lm_view import (
    clean_text,
    get_lm,
    lm_available,
    passage_html,
    passage_summary,
    route_text,
)
from lessons.course.url_state import write_url

DEFAULT_PROMPT = "def mean(values):\n    "
NEW_TOKENS = 48  # about 1 s of generation on one core of a 2-core server
PROMPT_CHARS = 500


def continue_text(prompt: str, new_tokens: int = NEW_TOKENS, seed: int = 0) -> Iterator[str]:
    """Yield the continuation of `prompt` piece by piece (text, not tokens: a multi-byte character
    split over two tokens appears once it is whole)."""
    model, tok = get_lm()
    ids = tok.encode(prompt, add_special_tokens=False).ids
    if not ids:
        return
    made: list[int] = []
    shown = ""
    with torch.inference_mode():
        for token in model.generate(ids, max_new_tokens=new_tokens, temperature=0.7, top_k=40, seed=seed):
            made.append(token)
            text = tok.decode(made)
            if text.endswith("\ufffd"):
                continue  # half of a multi-byte character
            yield text[len(shown):]
            shown = text


def _remember_prompt() -> None:
    st.session_state["intro_lm_saved"] = st.session_state["intro_lm_prompt"]


@st.fragment
def render_hero() -> None:
    if not lm_available():
        st.info("The course's language model is not installed in this copy of MoE Lab; "
                "the rest of the lesson works without it.")  # fmt: skip
        return
    st.session_state.setdefault("intro_lm_saved", st.query_params.get("intro_prompt", DEFAULT_PROMPT))
    st.session_state.setdefault("intro_lm_prompt", st.session_state["intro_lm_saved"][:PROMPT_CHARS])
    with st.container(border=True):
        st.markdown("**Meet a real Mixture-of-Experts model.** It was trained here on Python's standard "
                    "library and its documentation. Give it a start; every token it reads or writes "
                    "goes to 2 of its 8 experts in each layer.")  # fmt: skip
        with st.form("intro_lm_form", border=False):
            st.text_area("Start of a text (code or English)", key="intro_lm_prompt", height=80,
                         max_chars=PROMPT_CHARS)  # fmt: skip
            pressed = st.form_submit_button("Write on", icon=":material/edit:", type="primary")
        prompt, notices = clean_text(st.session_state["intro_lm_prompt"], PROMPT_CHARS)
        for note in notices:
            st.caption(note)
        if pressed:
            _remember_prompt()
            write_url(intro_prompt=prompt)
        written = st.session_state.get("intro_lm_written", {})
        if pressed and prompt.strip():
            box, streamed = st.empty(), ""
            for piece in continue_text(prompt):  # shown as code: model output is never markup
                streamed += piece
                box.code(streamed, language=None)
            written = {"prompt": prompt, "text": prompt + streamed}
            st.session_state["intro_lm_written"] = written
        elif written:
            st.code(written["text"][len(written["prompt"]):] or " ", language=None)
        text = written.get("text") or prompt
        if text.strip():
            routed = route_text(text)
            st.html(passage_html(routed))
            st.caption(passage_summary(routed) + " Press Write on to let the model continue your text.")
