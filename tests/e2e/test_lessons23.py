"""Lessons 2 and 3 in a real browser: sliders redraw their charts in place, the benchmark reports.

A slider is moved with the keyboard (focus + arrow keys, as a keyboard user would) and the chart's
data is read from Plotly's own graph object in the page, so "the heatmap changed" means its figure
data changed — not just that something repainted. A marker set on `window` before the move must
survive it: a full page reload would wipe it.
"""

from __future__ import annotations

import json

import pytest

from tests.app.lesson2_router.test_lesson2 import decode_plotly
from tests.e2e.conftest import AppServer, assert_no_exception, screenshot, wait_for_app_idle

pytestmark = pytest.mark.e2e
FIRST_LOAD_MS = 120_000  # the first visit loads torch and the model; a busy 2-core machine is slow


def open_lesson(page, url: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    wait_for_app_idle(page, timeout_ms=FIRST_LOAD_MS)


CHART_JS = "key => JSON.stringify(document.querySelector(`.st-key-${key} .js-plotly-plot`)?.data ?? null)"


def press_slider(page, label: str, presses: int, chart: str | None, key: str = "ArrowRight") -> None:
    """Move the slider named `label` with the keyboard (Streamlit 1.67: an <input type=range>), then
    wait until the chart drawn with key `chart` has new data (or, without a chart, until the URL
    holds the new value) and the app is idle again."""
    before = page.evaluate(CHART_JS, chart) if chart else page.url
    box = page.locator('[data-testid="stSlider"]').filter(has=page.get_by_text(label, exact=True))
    slider = box.locator('input[type="range"]')
    slider.focus()
    for _ in range(presses):
        slider.press(key)
    changed = f"before => ({CHART_JS})({json.dumps(chart)}) !== before" if chart else \
        "before => location.href !== before"  # fmt: skip
    page.wait_for_function(changed, arg=before, timeout=60_000)
    wait_for_app_idle(page)


def chart_data(page, key: str) -> list:
    """The `data` array of the Plotly chart drawn with Streamlit key `key`."""
    return decode_plotly(json.loads(page.evaluate(CHART_JS, key)))


def chosen_cells(data: list) -> list[tuple]:
    marks = data[1]  # the outline markers of the top-k cells
    return list(zip(marks["y"], marks["x"], strict=True))


def test_router_sliders_redraw_the_heatmap_without_a_reload(page, app_server: AppServer) -> None:
    open_lesson(page, f"{app_server.url}/The_Router")
    assert_no_exception(page)
    page.locator(".st-key-router_sliders_chart .js-plotly-plot").wait_for()
    page.evaluate("window.__no_reload = 'still here'")
    before = chart_data(page, "router_sliders_chart")
    words = len({row for row, _ in chosen_cells(before)})  # tokens with an outlined cell: all of them
    assert len(chosen_cells(before)) == 2 * words

    press_slider(page, "k (experts per token)", 1, "router_sliders_chart")  # k: 2 -> 3
    after = chart_data(page, "router_sliders_chart")
    assert len(chosen_cells(after)) == 3 * words
    assert set(chosen_cells(before)) < set(chosen_cells(after))  # top-2 stays inside top-3
    assert page.evaluate("window.__no_reload") == "still here"
    assert "router_k=3" in page.url

    press_slider(page, "router noise σ", 20, "router_sliders_chart")  # σ: 0 -> 2.0 changes the probabilities
    noisy = chart_data(page, "router_sliders_chart")
    assert noisy[0]["z"] != after[0]["z"]
    assert page.evaluate("window.__no_reload") == "still here"
    assert_no_exception(page)
    screenshot(page, "lesson2_after_sliders")


def test_capacity_slider_and_benchmark_in_lesson3(page, app_server: AppServer) -> None:
    open_lesson(page, f"{app_server.url}/Experts_and_Sparse_Compute")
    assert_no_exception(page)
    page.evaluate("window.__no_reload = 'still here'")
    before = chart_data(page, "experts_capacity_chart")
    # CF: 1.0 -> 0.5 (ten steps of 0.05): more slots overflow.
    press_slider(page, "capacity factor CF", 10, "experts_capacity_chart", key="ArrowLeft")
    after = chart_data(page, "experts_capacity_chart")
    assert sum(after[1]["y"]) > sum(before[1]["y"])  # dropped slots
    assert page.evaluate("window.__no_reload") == "still here"

    # Small settings so the interpreter's run stays short: T = 16, k = 1.
    press_slider(page, "benchmark tokens T", 1, None, key="ArrowLeft")
    press_slider(page, "benchmark k", 1, None, key="ArrowLeft")
    bench = page.locator(".st-key-experts_bench_run")
    bench.get_by_role("button", name="Run the benchmark").click()
    page.locator('[data-testid="stProgress"]').first.wait_for(timeout=30_000)  # progress while timing
    wait_for_app_idle(page, timeout_ms=120_000)
    table = page.locator('[data-testid="stTable"]').filter(has_text="Triton kernel")
    assert table.count() == 1
    text = table.inner_text()
    assert "naive per-expert loop" in text and "sorted grouped path" in text
    assert "Finished: 3 of 3" in page.locator('[data-testid="stMain"]').text_content()
    assert_no_exception(page)
    screenshot(page, "lesson3_after_benchmark")
