"""Every page on a phone (390x844, the size issue 18 was found at) in Chromium.

On each page, after its charts have drawn: the sidebar starts collapsed (it covered 77 % of the
first screen), nothing makes the page scroll sideways (a formula or a code line wider than the
screen scrolls inside its own box, and that box can be reached by keyboard), no Plotly toolbar is
shown, the titles printed on a chart (its title, subplot titles) neither overlap each other nor run
past the chart's edge, and no two tick labels of an axis print over each other.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import AppServer, goto, screenshot
from tests.e2e.test_accessibility import PAGES, open_drawn, url_path

pytestmark = pytest.mark.e2e
PHONE = {"width": 390, "height": 844}
SIDEBAR = """() => {
  const s = document.querySelector('[data-testid="stSidebar"]');
  const links = [...s.querySelectorAll('a')];
  return {collapsed: s.getAttribute('data-collapsed'),
          visibleWidth: Math.max(0, s.getBoundingClientRect().right),
          linksShown: links.filter(a => a.checkVisibility({visibilityProperty: true})).length};
}"""

# Elements that stick out past the right edge of the screen without a box that clips or scrolls
# them inside the screen; and the page's own sideways scroll.
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const main = document.querySelector('[data-testid="stMain"]');
  const loose = [];
  for (const e of main.querySelectorAll('*')) {
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.right <= width + 1 || e.closest('.katex-mathml')) continue;  // MathML: for readers
    let box = e.parentElement, held = false;
    for (; box && box !== main; box = box.parentElement) {
      const style = getComputedStyle(box);
      const clips = style.overflowX !== 'visible' || box instanceof SVGSVGElement;
      if (clips && box.getBoundingClientRect().right <= width + 1) {
        held = true;
        break;
      }
    }
    const what = e.getAttribute('data-testid') || e.className.baseVal || e.className;
    if (!held) loose.push(e.tagName + ' ' + what + ' ' + Math.round(r.right));
  }
  return {page: document.documentElement.scrollWidth - width, main: main.scrollWidth - main.clientWidth,
          loose: loose.slice(0, 8)};
}"""

# Display formulas wider than the screen: each must scroll sideways and take keyboard focus.
WIDE_FORMULAS = """() => [...document.querySelectorAll('.katex-display')]
  .filter(k => k.scrollWidth > k.clientWidth + 1)
  .map(k => ({scrolls: ['auto', 'scroll'].includes(getComputedStyle(k).overflowX),
              focusable: k.tabIndex >= 0, label: k.getAttribute('aria-label')}))"""

# Per chart: pairs of printed titles (figure title, subplot titles) whose boxes overlap, titles and
# axis titles that stick out of the chart (cut off), and neighbouring tick labels of one axis that overlap.
CHART_TEXT = """() => {
  const overlaps = [], toolbars = [], cut = [], tickOverlaps = [];
  for (const chart of document.querySelectorAll('[data-testid="stPlotlyChart"]')) {
    const items = [...chart.querySelectorAll('.gtitle, .infolayer .annotation-text')]
      .map(t => ({text: t.textContent, r: t.getBoundingClientRect()}))
      .filter(t => t.r.width > 0 && t.text.trim());
    for (let i = 0; i < items.length; i++) for (let j = i + 1; j < items.length; j++) {
      const a = items[i].r, b = items[j].r;
      if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1)
        overlaps.push([items[i].text, items[j].text]);
    }
    const box = chart.getBoundingClientRect();
    const axisTitles = [...chart.querySelectorAll('g[class^="g-"][class$="title"] text')]
      .map(t => ({text: t.textContent, r: t.getBoundingClientRect()})).filter(t => t.r.width > 0);
    for (const t of [...items, ...axisTitles]) {
      if (t.r.left < box.left - 1 || t.r.right > box.right + 1) cut.push(t.text);
    }
    for (const axis of chart.querySelectorAll('g.xaxislayer-above, g.yaxislayer-above')) {
      const ticks = [...axis.querySelectorAll('g[class$="tick"] > text')]
        .map(t => ({text: t.textContent, r: t.getBoundingClientRect()}))
        .filter(t => t.r.width > 0 && t.text.trim());
      for (let i = 0; i + 1 < ticks.length; i++) {
        const a = ticks[i].r, b = ticks[i + 1].r;
        if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1)
          tickOverlaps.push([ticks[i].text, ticks[i + 1].text]);
      }
    }
    for (const bar of chart.querySelectorAll('.modebar')) {
      if (bar.checkVisibility()) toolbars.push(bar.className);
    }
  }
  return {overlaps, toolbars, cut, tickOverlaps};
}"""


@pytest.mark.parametrize("name", PAGES)
def test_page_fits_a_phone(browser, app_server: AppServer, name: str) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        open_drawn(page, f"{app_server.url}/{url_path(PAGES[name])}")
        sidebar = page.evaluate(SIDEBAR)
        assert sidebar["collapsed"] == "true" and sidebar["visibleWidth"] == 0, sidebar
        assert sidebar["linksShown"] == 0, sidebar  # nor in the Tab order, while out of view
        overflow = page.evaluate(OVERFLOW)
        assert overflow == {"page": 0, "main": 0, "loose": []}, f"{name} is wider than a phone: {overflow}"
        formulas = page.evaluate(WIDE_FORMULAS)
        assert all(f["scrolls"] and f["focusable"] and f["label"] for f in formulas), formulas
        charts = page.evaluate(CHART_TEXT)
        assert not charts["toolbars"], f"{name}: a Plotly toolbar is shown: {charts['toolbars']}"
        assert charts["overlaps"] == [], f"{name}: titles overlap: {charts}"
        assert charts["cut"] == [], f"{name}: titles cut off at the chart's edge: {charts}"
        assert charts["tickOverlaps"] == [], f"{name}: tick labels overlap: {charts}"
        screenshot(page, f"phone_{name}")
    finally:
        context.close()


def test_sidebar_opens_on_a_phone_and_starts_open_on_a_desktop(browser, app_server: AppServer) -> None:
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    desktop = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = phone.new_page()
        goto(page, app_server.url)
        page.locator('[data-testid="stExpandSidebarButton"]').click()
        page.wait_for_timeout(500)  # the slide-in
        sidebar = page.evaluate(SIDEBAR)
        assert sidebar["collapsed"] == "false" and sidebar["linksShown"] >= 7, sidebar
        page = desktop.new_page()
        goto(page, app_server.url)
        sidebar = page.evaluate(SIDEBAR)
        assert sidebar["collapsed"] == "false" and sidebar["visibleWidth"] > 200, sidebar
    finally:
        phone.close()
        desktop.close()
