"""The live models every lesson may draw on, loaded once per server process.

Why here and not in a lesson: Lessons 2 and 3 both run the trained router demo, and a lesson must
never import another lesson (`tests/app/course/test_layering.py`). Each loader is an
`st.cache_resource`: one copy shared by every session, used for inference only, never mutated.
"""

from __future__ import annotations

import streamlit as st

from moe_core.router_demo import RouterDemo, load_router_demo


@st.cache_resource(show_spinner="Loading the router's trained weights…")
def get_model() -> RouterDemo:
    """One model per process, shared by every session: inference only, never mutated."""
    return load_router_demo()
