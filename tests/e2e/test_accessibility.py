"""axe-core on every page of the course, at a desktop and a phone size, after the live parts have drawn.

axe-core comes vendored inside `axe-playwright-python` (pinned in requirements-dev.txt; its
axe.min.js is axe-core 4.12.1), so nothing is fetched at test time. A page passes with no serious
and no critical violation. Before issue 18's fixes the pages had 1-2 serious each (caption
contrast 4.21:1, scrollable formulas and code that a keyboard cannot reach); after, none.

axe cannot see inside SVG, so the same test measures what it misses: the contrast of every chart's
tick labels and axis titles, and that no st.metric value is cut off ("25.2 GF...").
"""

from __future__ import annotations

import pytest

from lessons.course.text import GLOSSARY_PAGE, LESSONS
from tests.e2e.conftest import AppServer, assert_no_exception, goto

pytestmark = pytest.mark.e2e
FIRST_VISIT_MS = 180_000
SIZES = {"desktop": (1400, 900), "phone": (390, 844)}
PAGES = {"home": "", **{f"lesson{i.number}": i.page for i in LESSONS}, "glossary": GLOSSARY_PAGE}
BLOCKING = ("serious", "critical")


def url_path(page_file: str) -> str:
    """`pages/3_Experts_and_Sparse_Compute.py` -> `Experts_and_Sparse_Compute` (legacy multipage)."""
    return page_file.split("/")[-1].split("_", 1)[1].removesuffix(".py") if page_file else ""


def open_drawn(page, url: str) -> None:
    """Open `url` and wait until its charts are drawn; then lift `content-visibility: auto`
    (lessons/course/page.py), so axe sees the parts below the fold laid out as a reader would."""
    goto(page, url, FIRST_VISIT_MS)
    assert_no_exception(page)
    charts = page.locator('[data-testid="stPlotlyChart"]')
    for i in range(charts.count()):
        charts.nth(i).locator(".main-svg").first.wait_for(state="attached")
    page.add_style_tag(content="* { content-visibility: visible !important; }")
    page.wait_for_timeout(600)  # a re-layout, and the page's scrollable-box marker (150 ms debounce)


def axe_violations(page) -> list[dict]:
    from axe_playwright_python.sync_playwright import Axe

    return Axe().run(page).response["violations"]


# WCAG relative luminance of the computed fill of every tick label and axis title in the charts.
TEXT_CONTRAST = """() => {
  const lum = (rgb) => rgb.map(c => c / 255).map(c => c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4)
    .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
  const out = [];
  const sel = '[data-testid="stPlotlyChart"] g[class$="tick"] > text, '
    + '[data-testid="stPlotlyChart"] g[class^="g-"][class$="title"] text';
  for (const t of document.querySelectorAll(sel)) {
    if (!t.textContent.trim()) continue;
    const rgb = getComputedStyle(t).fill.match(/[\\d.]+/g).slice(0, 3).map(Number);
    out.push({text: t.textContent.slice(0, 30), ratio: 1.05 / (lum(rgb) + 0.05)});  // on white
  }
  return out;
}"""

# st.metric values and labels whose text is wider than a box that clips it (cut or ellipsised).
CUT_METRICS = """() => {
  const cut = [];
  const metrics = '[data-testid="stMetricValue"], [data-testid="stMetricLabel"]';
  for (const metric of document.querySelectorAll(metrics)) {
    for (const box of [metric, ...metric.querySelectorAll('*')]) {
      if (box.scrollWidth > box.clientWidth + 1 && getComputedStyle(box).overflowX !== 'visible') {
        cut.push(metric.textContent.trim());
        break;
      }
    }
  }
  return cut;
}"""


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", PAGES)
def test_page_is_accessible(browser, app_server: AppServer, name: str, size: str) -> None:
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        open_drawn(page, f"{app_server.url}/{url_path(PAGES[name])}")
        blocking = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
                    for v in axe_violations(page) if v["impact"] in BLOCKING]
        assert not blocking, f"axe on {name} at {width}x{height}: {blocking}"
        low = [t for t in page.evaluate(TEXT_CONTRAST) if t["ratio"] < 4.5]
        assert not low, f"chart text under 4.5:1 on {name}: {low[:5]}"
        cut = page.evaluate(CUT_METRICS)
        assert not cut, f"metrics cut off on {name} at {width}x{height}: {cut}"
    finally:
        context.close()
