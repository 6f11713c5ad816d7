"""Lesson 4 in a real browser: watch a run train and stop it; then no balancing kills experts and
the loss-free bias keeps them all alive, read from the page as a learner reads it.

Screenshots (tests/e2e/artifacts/): lesson4_first_screen (1400x900 before and after a run),
lesson4_phone (390x844), lesson4_live (mid-run), lesson4_collapsed, lesson4_balanced, each of the
training panel, plus a full page of the balanced run.
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import ARTIFACTS, AppServer, assert_no_exception, goto, screenshot

pytestmark = pytest.mark.e2e
RUN_MS = 120_000  # a run is ~1 s alone; the first one imports torch in the server
PROGRESS = re.compile(r"Training: step (\d+) of 2000")


def panel(page):
    """The bordered container that shows the main run (keyed `balance_main_box` by the page)."""
    return page.locator(".st-key-balance_main_box")


def shot(page, locator, name: str) -> None:
    """Screenshot one element. Streamlit scrolls inside its main container, so the viewport is
    stretched to the page's height first (as conftest.screenshot does for whole pages)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    height = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, 16000)})
    page.wait_for_timeout(300)
    try:
        locator.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    finally:
        page.set_viewport_size(size)


def metric(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    box.scroll_into_view_if_needed()  # below the fold the page skips rendering (content-visibility)
    page.wait_for_timeout(200)
    return box.locator('[data-testid="stMetricValue"]').inner_text().strip()


def train(page, mode: str | None = None) -> None:
    form = page.locator('[data-testid="stForm"]').filter(has=page.get_by_role("button", name="Train"))
    if mode is not None:
        form.get_by_role("radiogroup", name="Balancing").locator("label").filter(has_text=mode).click()
    form.get_by_role("button", name="Train").click()


def progress_step(page) -> int:
    text = page.get_by_text(PROGRESS).first.inner_text()
    return int(PROGRESS.search(text).group(1))


def wait_for_step_after(page, step: int, timeout_ms: int = RUN_MS) -> int:
    """Poll the progress text until it shows a step beyond `step` (the page redraws as it trains)."""
    for _ in range(timeout_ms // 250):
        now = progress_step(page)
        if now > step:
            return now
        page.wait_for_timeout(250)
    raise AssertionError(f"the progress stayed at step {step}")


def test_stop_a_live_run(page, app_server: AppServer) -> None:
    # 16 experts, top-2, 2000 steps, with the bias, router noise, z-loss and a capacity limit: the
    # slowest run the form allows (~6 s alone, measured), so Stop lands mid-run. Without the extras it
    # took ~4 s, and the run could end before the screenshot was taken and Stop clicked.
    query = (
        "balance_steps=2000&balance_seed=3&balance_experts=16&balance_topk=2"
        "&balance_mode=aux-free&balance_noise=1&balance_zloss=1&balance_cf=1.25"
    )
    goto(page, f"{app_server.url}/Load_Balancing?{query}")
    train(page)
    stop = page.get_by_role("button", name="Stop")
    stop.wait_for(timeout=RUN_MS)
    first = wait_for_step_after(page, 0)
    second = wait_for_step_after(page, first)  # the charts and the counter move while it trains
    assert 0 < first < second < 2000
    # Stop at once: with the server's reruns now ~20 ms this run can finish in a few seconds, and
    # the screenshot below is of the stopped run, whose charts stay as they were at that step.
    stop.click(timeout=15_000)
    page.get_by_text(re.compile(r"Stopped at step \d+ of 2000")).wait_for(timeout=RUN_MS)
    panel(page).scroll_into_view_if_needed()
    panel(page).locator(".js-plotly-plot").nth(2).wait_for(timeout=RUN_MS)  # bars, load over time, loss
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "lesson4_live.png"))  # the viewport only
    assert_no_exception(page)


def test_no_balancing_kills_experts_and_the_bias_keeps_them(page, app_server: AppServer) -> None:
    goto(page, f"{app_server.url}/Load_Balancing?balance_steps=300&balance_seed=0&balance_mode=none")
    train(page)
    page.get_by_text("What happened: collapse").wait_for(timeout=RUN_MS)
    dead = int(metric(page, "Dead experts").split(" of ")[0])
    assert dead >= 4, metric(page, "Dead experts")
    assert float(metric(page, "Max expert share")) >= 0.5
    shot(page, panel(page), "lesson4_collapsed")
    shot(page, page.locator(".st-key-balance_details_box"), "lesson4_collapsed_details")

    train(page, mode="aux-loss-free bias")
    page.get_by_text("What happened: the load stayed balanced").wait_for(timeout=RUN_MS)
    assert metric(page, "Dead experts") == "0 of 8"
    assert float(metric(page, "Max expert share")) <= 0.25
    shot(page, panel(page), "lesson4_balanced")
    assert "balance_mode=aux-free" in page.url
    assert_no_exception(page)
    screenshot(page, "lesson4_page")


def in_viewport(page, locator) -> bool:
    box = locator.bounding_box()
    size = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + min(box["height"], 120) <= size["height"]


def title_of(chart) -> str:
    """The title printed above a chart (lessons/course/charts.py): the element before the chart's."""
    return chart.evaluate("""c => {
      const box = c.closest('[data-testid="stElementContainer"]');
      return box && box.previousElementSibling ? box.previousElementSibling.innerText : '';
    }""")


def test_first_screen_has_the_live_model_and_it_trains_in_view(page, app_server: AppServer) -> None:
    """Issue 17: at 1400x900, scrolled to the top, a live chart and Train are in view; issue 18:
    the chart moves there while the model trains, and ends with a verdict and a replay slider."""
    page.set_viewport_size({"width": 1400, "height": 900})
    goto(page, f"{app_server.url}/Load_Balancing?balance_steps=300&balance_seed=1&balance_mode=none")
    bars = panel(page).locator('[data-testid="stPlotlyChart"]').first
    train_button = page.get_by_role("button", name="Train")
    assert in_viewport(page, bars) and in_viewport(page, train_button)
    assert "before training" in title_of(bars)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "lesson4_first_screen.png"))
    train_button.click()
    page.get_by_text(re.compile(r"Verdict: (collapsed|loss spike|uneven|balanced)")).wait_for(timeout=RUN_MS)
    page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollTo(0, 0)")
    page.wait_for_timeout(300)
    assert in_viewport(page, bars) and "at step 300" in title_of(bars)
    assert page.get_by_role("slider", name="Replay the run: step").count() == 1
    page.screenshot(path=str(ARTIFACTS / "lesson4_first_screen_after.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "lesson4_phone.png"))
    screenshot(page, "lesson4_phone_page")
    assert_no_exception(page)
