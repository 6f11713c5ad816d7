"""Lesson 4's settings: widget keys, defaults and ranges, the URL, and the TrainConfig they describe.

Settings live in the URL (`balance_*`), so a link reproduces a run; each widget's value is seeded
from the URL once per session and the widgets own it afterwards.
"""

from __future__ import annotations

import streamlit as st

from lessons.course.url_state import UrlValue, url_choice, url_flag, url_number, write_url
from moe_core.train import TrainConfig

MODES = {
    "none": "none",
    "aux-loss": "auxiliary loss (Switch)",
    "aux-free": "aux-loss-free bias (DeepSeek-V3)",
}
LEARNING_RATES = (0.003, 0.01, 0.02, 0.03, 0.05, 0.1)
NUMBERS = {  # key -> (default, lo, hi, integer)
    "balance_alpha": (TrainConfig.aux_coef, 0.0, 0.3, False),
    "balance_experts": (8, 4, 16, True),
    "balance_topk": (1, 1, 2, True),
    "balance_steps": (300, 50, 2000, True),
    "balance_lr": (0.03, 0.003, 0.1, False),
    "balance_seed": (0, 0, 9999, True),
    "balance_noise": (0.0, 0.0, 2.0, False),
    "balance_cf": (0.0, 0.0, 4.0, False),
    "balance_switch_step": (150, 10, 1000, True),
    "balance_after_steps": (300, 50, 1000, True),
    "balance_seeds": (5, 2, 10, True),
}
CHOICES = {
    "balance_mode": ("none", tuple(MODES)),
    "balance_switch_to": ("aux-free", ("aux-loss", "aux-free")),
}
FLAGS = {"balance_zloss": False}
MAIN, COMPARE, RECOVERY, SWEEP = "main", "compare", "recovery", "sweep"


# --- state -----------------------------------------------------------------------------------


def init_state() -> None:
    """Seed each widget's value from the URL once per session (the widgets own it afterwards)."""
    notices: dict[str, str] = st.session_state.setdefault("balance_notices", {})
    parsed: dict[str, UrlValue] = {k: url_number(k, *spec) for k, spec in NUMBERS.items()}
    parsed |= {k: url_choice(k, *spec) for k, spec in CHOICES.items()}
    parsed |= {k: url_flag(k, default) for k, default in FLAGS.items()}
    lr = parsed["balance_lr"]  # snap to the slider's stops
    parsed["balance_lr"] = UrlValue(min(LEARNING_RATES, key=lambda v: abs(v - lr.value)), lr.notice)
    for key, value in parsed.items():
        if key not in st.session_state:
            st.session_state[key] = value.value
            if value.notice:
                notices[key] = value.notice


def config(**changes) -> TrainConfig:
    """The TrainConfig the form's values describe (with `changes` applied)."""
    s = st.session_state
    values = dict(
        balance=s["balance_mode"],
        aux_coef=float(s["balance_alpha"]),
        z_loss=bool(s["balance_zloss"]),
        noise=float(s["balance_noise"]) > 0,
        noise_std=float(s["balance_noise"]) or 1.0,
        capacity_factor=float(s["balance_cf"]) or None,
        num_experts=int(s["balance_experts"]),
        top_k=int(s["balance_topk"]),
        steps=int(s["balance_steps"]),
        lr=float(s["balance_lr"]),
        seed=int(s["balance_seed"]),
    )
    return TrainConfig(**(values | changes))


def write_settings_to_url() -> None:
    s = st.session_state
    write_url(**{k: s[k] for k in (*NUMBERS, *CHOICES, *FLAGS)})
