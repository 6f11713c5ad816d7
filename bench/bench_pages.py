"""How fast do MoE Lab's pages appear in a real browser?

Question (issue 4): does the home page render within 2 s of the server being up, and a lesson
the learner revisits within 1 s? Measured end to end: a fresh `streamlit run app.py` per round on
a throw-away SQLite database, Debian's Chromium driven by Playwright, timings from the moment
/_stcore/health answers (home) or the moment a sidebar link is clicked (lessons) until the page's
own content is drawn: Streamlit reports the script run finished, every Plotly chart has drawn
(asynchronously, after that report) and the browser's main thread has gone quiet (no long task
for 1 s; the time counted ends with the last long task, see `wait_drawn`).

    .venv/bin/python bench/bench_pages.py [--rounds 3] [--settle 15]

Prints one table; the first visit of a lesson includes importing torch/plotly in the server
process, the revisit is what a learner feels when coming back. The server warms every lesson's
default view in a background thread from its first page run (lessons/course/warm_up.py):
`--settle S` waits S seconds on the home page before the first lesson, as a learner arriving at
a server that has been up a little while would; 0 (the default) clicks on at once and so
measures first visits that race the warm-up.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lessons.course.text import LESSONS
from tests.e2e.conftest import APP_IDLE, CHROMIUM, CHROMIUM_ARGS, VIEWPORT, start_app

# In the page, from its first load: the end of every long task (>= 50 ms of main-thread work) and
# the moment Streamlit reports each script run finished. Plotly draws its charts asynchronously,
# after "script finished": a page whose charts were still being drawn used to count as done, and
# its drawing was billed to the next page the benchmark opened (Lesson 3 "took" 0.8 s before it
# even asked the server for its run, finishing Lesson 2's charts).
PAGE_CLOCK = """
() => {
  if (window.__moeClock) return;
  window.__moeClock = {longTasks: [], idleAt: 0};
  new PerformanceObserver(list => {
    for (const e of list.getEntries()) {
      window.__moeClock.longTasks.push([e.startTime, e.startTime + e.duration]);
    }
  }).observe({type: "longtask"});
  const app = () => document.querySelector('[data-testid="stApp"]');
  new MutationObserver(() => {
    if (app() && app().dataset.testScriptState === "notRunning") window.__moeClock.idleAt = performance.now();
  }).observe(document, {subtree: true, attributes: true,  // the init script runs before any element
                        attributeFilter: ["data-test-script-state"]});
}
"""
QUIET_MS = 1000  # the page counts as drawn once its main thread has had no long task for this long
CHARTS_DRAWN = """
() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
        .every(c => c.querySelector('.main-svg'))
"""


def wait_drawn(page, marker, since_ms: float, timeout_s: float = 120.0) -> float:
    """Seconds from `since_ms` (the page's performance.now()) until the new page is drawn: `marker`
    (a locator only the new page has) is visible, the script run has finished, every chart has
    drawn, and no long task has run for QUIET_MS. The time reported is the later of "script run
    finished" and the end of the last long task, so the quiet wait itself is not counted. Long
    tasks of the idle-time prefetch of the lessons' code (lessons/course/prefetch.py) are not
    the page's drawing: they start after it and are left out."""
    marker.first.wait_for(timeout=timeout_s * 1000)
    page.wait_for_selector(APP_IDLE, timeout=timeout_s * 1000)
    page.wait_for_function(CHARTS_DRAWN, timeout=timeout_s * 1000)
    while True:
        clock = page.evaluate("() => ({now: performance.now(), prefetch: window.__moePrefetch || {},"
                              " ...window.__moeClock})")
        began = clock["prefetch"].get("startedAt", math.inf)
        done = clock["prefetch"].get("doneAt", math.inf)
        ends = [end for start, end in clock["longTasks"] if not began <= start <= done]
        last = max([since_ms, clock["idleAt"], *ends])
        if clock["now"] - last >= QUIET_MS:
            return (last - since_ms) / 1000
        page.wait_for_timeout(QUIET_MS - (clock["now"] - last) + 20)


def click_lesson(page, number: int) -> float:
    info = LESSONS[number - 1]
    link = page.locator('[data-testid="stSidebar"] [data-testid="stPageLink"] a').filter(
        has=page.locator("p", has_text=f"{number}. {info.title}"))
    since = page.evaluate("() => performance.now()")
    link.first.click()
    # The page's own title: the previous page's elements stay on screen until replaced.
    return wait_drawn(page, page.get_by_role("heading", name=info.title, level=1), since)


def one_round(browser, workdir: Path, settle_s: float = 0.0) -> dict[str, float]:
    db = workdir / f"progress-{time.monotonic_ns()}.db"
    server = start_app(f"sqlite:///{db}", workdir)
    try:
        page = browser.new_page(viewport=VIEWPORT)
        page.add_init_script(f"({PAGE_CLOCK})()")
        up = time.perf_counter()  # /_stcore/health just answered
        page.goto(f"{server.url}/?learner=bench", wait_until="commit")
        page.wait_for_selector('[data-testid="stApp"]', timeout=120_000)
        shell = time.perf_counter() - up  # HTML + JS bundle loaded, before any script output
        # The page's clock starts at navigation, which began `shell` - (now - navigation) ago.
        loaded_ms = page.evaluate("() => performance.now()")
        since_up = loaded_ms - (time.perf_counter() - up) * 1000
        home = wait_drawn(page, page.get_by_text("/ 5 completed"), since_up)
        row = {"server start": server.started_s, "home: app shell drawn": shell,
               "home after server up": home}
        page.wait_for_timeout(settle_s * 1000)
        # A learner reads the home page for a few seconds: the lessons' code loads meanwhile.
        page.wait_for_function("() => (window.__moePrefetch || {}).state === 'done'", timeout=120_000)
        done_ms = page.evaluate("() => window.__moePrefetch.doneAt")
        row["home: lesson code prefetched"] = (done_ms - since_up) / 1000
        for info in LESSONS:
            row[f"lesson {info.number} first visit"] = click_lesson(page, info.number)
        for info in LESSONS:
            row[f"lesson {info.number} revisit"] = click_lesson(page, info.number)
        page.close()
        return row
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="fresh servers to measure")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds on the home page before the first lesson (the warm-up runs)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(args.rounds):
            rows.append(one_round(browser, Path(tmp), args.settle))
        browser.close()
    budget = {"home after server up": 2.0, **{f"lesson {i.number} first visit": 2.0 for i in LESSONS},
              **{f"lesson {i.number} revisit": 1.0 for i in LESSONS}}
    print(f"MoE Lab page timings, {args.rounds} fresh server(s), {args.settle:g} s on the home page before "
          "the first lesson, seconds (Chromium via Playwright)\n")
    print(f"| {'what':<28} | {'median':>7} | {'max':>7} | {'budget':>6} | ok  |")
    print(f"|{'-' * 30}|{'-' * 9}|{'-' * 9}|{'-' * 8}|-----|")
    for key in rows[0]:
        values = [r[key] for r in rows]
        limit = budget.get(key)
        ok = "" if limit is None else ("yes" if max(values) <= limit else "NO")
        print(f"| {key:<28} | {statistics.median(values):7.2f} | {max(values):7.2f} | "
              f"{'' if limit is None else f'{limit:.1f}':>6} | {ok:<3} |")


if __name__ == "__main__":
    main()
