"""Lessons 1, 2 and 5 open with a live model on the first screen, in Chromium at 1400x900.

"First screen" means: scrolled to the top, the live picture and a control are inside the viewport
before any scrolling. The overview diagram's parts are links: clicking one must land on the
section that explains it, scrolled into view.
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import AppServer, assert_no_exception, screenshot, wait_for_app_idle

pytestmark = pytest.mark.e2e
FIRST_LOAD_MS = 120_000
DESKTOP = {"width": 1400, "height": 900}
PASSAGE = 'div:has(> b:text-is("Layer 1"))'  # one row of the coloured passage


def open_lesson(page, url: str) -> None:
    page.set_viewport_size(DESKTOP)
    page.goto(url, wait_until="domcontentloaded")
    wait_for_app_idle(page, timeout_ms=FIRST_LOAD_MS)


def in_first_screen(page, locator) -> bool:
    box = locator.first.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= DESKTOP["height"]


def test_lesson1_first_screen_writes_and_colours_the_learners_text(app_server: AppServer, page) -> None:
    open_lesson(page, f"{app_server.url}/What_is_MoE")
    assert in_first_screen(page, page.locator(PASSAGE)), "the coloured passage is below the fold"
    button = page.get_by_role("button", name="Write on")
    assert in_first_screen(page, button)
    before = page.locator(PASSAGE).first.inner_text()
    box = page.get_by_label("Start of a text (code or English)")
    box.fill("import sys\n")
    button.click()
    page.wait_for_function("b => { const r = [...document.querySelectorAll('b')].find(x => "
                           "x.textContent === 'Layer 1'); return r && r.parentElement.innerText !== b }",
                           arg=before, timeout=60_000)  # fmt: skip
    wait_for_app_idle(page)
    assert_no_exception(page)
    assert "sys" in page.locator(PASSAGE).first.inner_text()
    screenshot(page, "lesson1_first_screen", full_page=False)


def test_diagram_parts_take_the_learner_to_their_section(app_server: AppServer, page) -> None:
    open_lesson(page, f"{app_server.url}/What_is_MoE")
    router = page.locator('a[aria-label^="The router"]').first
    router.scroll_into_view_if_needed()
    screenshot(page, "lesson1_diagram", full_page=False)
    router.click()
    page.wait_for_url(re.compile(r"/The_Router"), timeout=60_000)
    wait_for_app_idle(page, timeout_ms=FIRST_LOAD_MS)
    heading = page.get_by_role("heading", name="The router is one matrix")
    page.wait_for_function("() => true")
    heading.wait_for()
    page.wait_for_timeout(1500)  # Streamlit scrolls to the anchor once the section has rendered
    assert in_first_screen(page, heading), "the section the link names is not scrolled into view"


def test_lesson2_first_screen_k_changes_the_measured_loss(app_server: AppServer, page) -> None:
    open_lesson(page, f"{app_server.url}/The_Router")
    assert in_first_screen(page, page.locator(PASSAGE))
    slider = page.locator('[data-testid="stSlider"]').filter(
        has=page.get_by_text("Experts per token, k", exact=True)).locator('input[type="range"]')  # fmt: skip
    assert in_first_screen(page, slider)
    loss = page.locator("p", has_text=re.compile(r"bits per token")).first
    before = loss.inner_text()
    slider.focus()
    slider.press("ArrowLeft")
    page.wait_for_function("b => ![...document.querySelectorAll('p')].some(p => p.innerText === b)",
                           arg=before, timeout=60_000)  # fmt: skip
    wait_for_app_idle(page)
    assert_no_exception(page)
    assert "with k = 1" in page.locator("p", has_text=re.compile(r"bits per token")).first.inner_text()
    screenshot(page, "lesson2_first_screen", full_page=False)


def test_lesson5_first_screen_shows_a_real_model_and_a_batch_slider(app_server: AppServer, page) -> None:
    open_lesson(page, f"{app_server.url}/MoE_at_Scale")
    chart = page.locator(".st-key-scale_hero_chart .js-plotly-plot")
    label = page.get_by_text("Tokens in a batch", exact=True)
    slider = page.locator('[data-testid="stSlider"]').filter(has=label)
    assert in_first_screen(page, chart) and in_first_screen(page, slider)
    before = page.locator("p", has_text="Stored: ").first.inner_text()
    slider.locator('[role="slider"], input[type="range"]').first.focus()
    page.keyboard.press("End")
    page.wait_for_function("b => ![...document.querySelectorAll('p')].some(p => p.innerText === b)",
                           arg=before, timeout=60_000)  # fmt: skip
    wait_for_app_idle(page)
    assert_no_exception(page)
    assert "A batch of 4,096 tokens" in page.locator("p", has_text="Stored: ").first.inner_text()
    screenshot(page, "lesson5_first_screen", full_page=False)
