"""Lesson 5 in a real browser: change the rank count and the REAL traffic matrix is redrawn.

The matrix comes from `python -m moe_core ep-demo` run by the page (a real Gloo all-to-all on N
local processes), so this test waits for real process starts; its timeouts are generous.
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import AppServer, assert_no_exception, screenshot, wait_for_app_idle

pytestmark = pytest.mark.e2e
FIRST_VISIT_MS = 240_000  # imports torch, trains two tiny layers, runs a 4-process job
RERUN_MS = 120_000  # one more real multi-process run


def traffic_chart(page):
    return page.locator('[data-testid="stPlotlyChart"]').filter(has_text="all_to_all")


def gpu_labels(page) -> set[str]:
    """Tick labels on the traffic matrices' axes: 0 .. N-1 (GPU numbers)."""
    return set(traffic_chart(page).locator("g.xtick text, g.ytick text").all_text_contents())


def test_rank_count_redraws_the_traffic_matrix(page, app_server: AppServer) -> None:
    page.goto(f"{app_server.url}/MoE_at_Scale?scale_ranks=4", wait_until="domcontentloaded")
    wait_for_app_idle(page, timeout_ms=FIRST_VISIT_MS)
    assert_no_exception(page)
    main = page.locator('[data-testid="stMain"]')
    # textContent, not innerText: below the fold the page is not rendered until scrolled near
    # (content-visibility: auto, lessons/course/page.py), and innerText is only the rendered text.
    assert "Traffic of 4 ranks: 512 routed slots" in main.text_content()
    traffic_chart(page).scroll_into_view_if_needed()
    assert gpu_labels(page) == {str(i) for i in range(4)}
    screenshot(page, "lesson5-4-ranks")

    # Streamlit 1.67's slider is an <input type="range"> (an implicit ARIA slider, named by its label).
    slider = page.get_by_role("slider", name="GPUs (ranks)")
    slider.focus()
    slider.press("ArrowLeft")  # 4 -> 2 ranks
    wait_for_app_idle(page, timeout_ms=RERUN_MS)
    assert_no_exception(page)
    page.wait_for_function("() => document.body.innerText.includes('Traffic of 2 ranks')", timeout=RERUN_MS)
    assert gpu_labels(page) == {"0", "1"}
    assert re.search(r"[?&]scale_ranks=2(&|$)", page.url), page.url
    traffic_chart(page).scroll_into_view_if_needed()
    screenshot(page, "lesson5-2-ranks")
    screenshot(page, "lesson5-traffic-2-ranks", full_page=False)
