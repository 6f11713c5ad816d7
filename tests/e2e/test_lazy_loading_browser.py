"""What the pages leave for later, in a real browser: the lessons' code loads while the learner is
on the home page (once; opening Lesson 1 fetches none of it again and its charts draw), and a
chart's table of numbers is built when the learner opens it."""

from __future__ import annotations

import pytest

from lessons.course.charts import TABLE_LABEL
from lessons.course.prefetch import WARM_ROUNDS, module_files
from lessons.course.text import LESSONS
from tests.e2e.conftest import AppServer, assert_no_exception, click_nav, goto, wait_for_app_idle

pytestmark = pytest.mark.e2e


def test_home_prefetches_the_lessons_code_and_lesson_1_reuses_it(app_server: AppServer, page) -> None:
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url.rsplit("/", 1)[-1]))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    goto(page, f"{app_server.url}/?learner=prefetch")
    page.wait_for_function("() => (window.__moePrefetch || {}).state === 'done'", timeout=90_000)
    files = set(module_files())
    assert files <= set(fetched), f"not prefetched: {sorted(files - set(fetched))}"
    # Plotly's code was run once, off screen, and the chart was thrown away.
    warm = page.evaluate("() => window.__moePrefetch.warmMs")
    assert warm and len(warm) == WARM_ROUNDS, warm
    assert page.locator('[aria-hidden="true"] .js-plotly-plot').count() == 0

    fetched.clear()
    click_nav(page, f"1. {LESSONS[0].title}")
    charts_drawn = "() => document.querySelectorAll('[data-testid=stPlotlyChart] .main-svg').length > 0"
    page.wait_for_function(charts_drawn, timeout=90_000)
    assert_no_exception(page)
    assert not files & set(fetched), f"fetched again: {sorted(files & set(fetched))}"
    assert errors == []


def test_a_charts_table_is_built_when_opened_and_dropped_when_closed(app_server: AppServer, page) -> None:
    goto(page, f"{app_server.url}/The_Router?learner=tables")
    tables = page.locator('[data-testid="stExpander"]').filter(has_text=TABLE_LABEL)
    assert tables.count() >= 2  # Lesson 2 offers the numbers of its two share heatmaps
    assert tables.locator('[data-testid="stDataFrame"]').count() == 0
    first = tables.first
    first.locator("summary").scroll_into_view_if_needed()
    first.locator("summary").click()
    wait_for_app_idle(page)
    first.locator('[data-testid="stDataFrame"]').wait_for(timeout=30_000)
    assert tables.locator('[data-testid="stDataFrame"]').count() == 1  # only the one opened
    first.locator("summary").click()
    wait_for_app_idle(page)
    assert first.locator('[data-testid="stDataFrame"]').count() == 0
    assert_no_exception(page)


# Plotly draws a chart a second time, whole, when its labels need more margin than the figure
# reserved (course.figures.reserve_margins; Plotly marks the layout "_redrawFromAutoMarginCount").
# Every lesson, at the desktop size and on a phone (where Lesson 1's calculator chart, with its
# labels on one line, tilted its x labels and was drawn twice).
_DRAWN_TWICE = """() => [...document.querySelectorAll('[data-testid=stPlotlyChart]')].filter(box => {
  const gd = box.querySelector('.js-plotly-plot');
  return gd && gd._fullLayout && '_redrawFromAutoMarginCount' in gd._fullLayout;
}).map(box => ((box.closest('[class*="st-key-"]') || {}).className || '?').match(/st-key-[\\w-]+/)?.[0])"""


@pytest.mark.parametrize("lesson", [1, 2, 3, 4, 5])
def test_every_chart_of_the_lessons_draws_in_one_pass(app_server: AppServer, page, lesson: int) -> None:
    _check_one_pass(app_server, page, lesson)


@pytest.mark.parametrize("lesson", [1, 2, 3, 4, 5])
def test_every_chart_draws_in_one_pass_on_a_phone(app_server: AppServer, browser, lesson: int) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        _check_one_pass(app_server, context.new_page(), lesson)
    finally:
        context.close()


def _check_one_pass(app_server: AppServer, page, lesson: int) -> None:
    path = LESSONS[lesson - 1].page.split("_", 1)[1].removesuffix(".py")
    goto(page, f"{app_server.url}/{path}?learner=margins")
    charts = page.locator('[data-testid="stPlotlyChart"]')
    shown = [charts.nth(i) for i in range(charts.count()) if charts.nth(i).is_visible()]  # open tabs only
    for chart in shown:  # content-visibility: a chart is laid out once it is scrolled near
        chart.scroll_into_view_if_needed()
        chart.locator(".main-svg").first.wait_for(timeout=60_000)
    assert_no_exception(page)
    assert len(shown) >= 5
    assert page.evaluate(_DRAWN_TWICE) == []
