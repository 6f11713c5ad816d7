"""Widget values that live in the URL, so a link reproduces a lesson's view.

Keys are prefixed by lesson (`router_k`, `balance_steps`). A value that is missing, not a number
or out of range is replaced (default) or clamped, and the caller gets a short notice to show —
never a traceback. Writing back keeps the URL in step with the widget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st


@dataclass(frozen=True)
class UrlValue:
    value: Any
    notice: str | None  # set when the URL's value was replaced or clamped


def parse_number(raw: str | None, default: float, lo: float, hi: float, integer: bool) -> UrlValue:
    """Pure parsing/clamping, separate from Streamlit so it is testable alone."""
    if raw is None or raw == "":
        return UrlValue(default, None)
    try:
        number = float(raw)
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError
    except (TypeError, ValueError):
        return UrlValue(default, f"ignored {raw[:40]!r}: not a number; using {default}")
    clamped = min(max(number, lo), hi)
    value = round(clamped) if integer else clamped
    if clamped != number:
        return UrlValue(value, f"{raw[:40]} is outside {lo}–{hi}; using {value}")
    return UrlValue(value, None)


def parse_choice(raw: str | None, default: str, options: Sequence[str]) -> UrlValue:
    if raw is None or raw == "":
        return UrlValue(default, None)
    if raw in options:
        return UrlValue(raw, None)
    return UrlValue(default, f"ignored {raw[:40]!r}: expected one of {', '.join(options)}")


def url_number(key: str, default: float, lo: float, hi: float, integer: bool = True) -> UrlValue:
    """Read `key` from st.query_params as a clamped number."""
    return parse_number(st.query_params.get(key), default, lo, hi, integer)


def url_choice(key: str, default: str, options: Sequence[str]) -> UrlValue:
    return parse_choice(st.query_params.get(key), default, options)


def url_flag(key: str, default: bool) -> UrlValue:
    parsed = parse_choice(st.query_params.get(key), "1" if default else "0", ("0", "1", "true", "false"))
    return UrlValue(parsed.value in ("1", "true"), parsed.notice)


def seed_numbers(
    notices: dict[str, str], numbers: dict[str, tuple], choices: dict[str, Sequence] | None = None
) -> None:
    """Seed each numeric widget's session value from the URL once (the widget owns it after).

    `numbers` maps key -> url_number's (default, lo, hi[, integer]); a value that must be one of
    `choices[key]` snaps to the nearest allowed one. Notices go into `notices` by key.
    """
    choices = choices or {}
    for key, spec in numbers.items():
        if key in st.session_state:
            continue
        parsed = url_number(key, *spec)
        value = parsed.value
        if key in choices and value not in choices[key]:
            value = min(choices[key], key=lambda c, v=value: abs(c - v))
            notices[key] = f"{key} must be one of {', '.join(map(str, choices[key]))}; using {value}"
        st.session_state[key] = value
        if parsed.notice:
            notices[key] = parsed.notice


def show_stored_notices(store: str, *keys: str) -> None:
    """Caption the URL notices a lesson recorded under st.session_state[store] for these keys."""
    recorded = st.session_state.get(store, {})
    notes = [recorded[k] for k in keys if k in recorded]
    if notes:
        st.caption("Link settings adjusted: " + "; ".join(notes))


def forget_notice_and_rerun(store: str, key: str, panels: list[str]) -> None:
    """Widget callback: the learner set `key` by hand, so drop its URL notice and rerun only the
    fragments (by key) that use it."""
    st.session_state.get(store, {}).pop(key, None)
    st.rerun(panels)


def write_url(**values: Any) -> None:
    """Store widget values in the URL (bools as 0/1), leaving other keys alone."""
    for key, value in values.items():
        text = str(int(value)) if isinstance(value, bool) else str(value)
        if st.query_params.get(key) != text:
            st.query_params[key] = text


def show_notices(*values: UrlValue) -> None:
    notes = [v.notice for v in values if v.notice]
    if notes:
        st.caption("Link settings adjusted: " + "; ".join(notes))
