"""How fast do MoE Lab's pages appear in a real browser?

Question (issue 4): does the home page render within 2 s of the server being up, and a lesson
the learner revisits within 1 s? Measured end to end: a fresh `streamlit run app.py` per round on
a throw-away SQLite database, Debian's Chromium driven by Playwright, timings from the moment
/_stcore/health answers (home) or the moment a sidebar link is clicked (lessons) until the page's
own content is drawn and Streamlit reports the script run finished.

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
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lessons.course.text import LESSONS
from tests.e2e.conftest import APP_IDLE, CHROMIUM, CHROMIUM_ARGS, VIEWPORT, start_app


def wait_drawn(page, marker, since: float, timeout_s: float = 120.0) -> float:
    """Seconds from `since` until `marker` (a locator only the new page has) is visible and the
    script run has finished. Playwright's own waits are event-driven, so polling costs nothing."""
    marker.first.wait_for(timeout=timeout_s * 1000)
    page.wait_for_selector(APP_IDLE, timeout=timeout_s * 1000)
    return time.perf_counter() - since


def click_lesson(page, number: int) -> float:
    info = LESSONS[number - 1]
    link = page.locator('[data-testid="stSidebar"] [data-testid="stPageLink"] a').filter(
        has=page.locator("p", has_text=f"{number}. {info.title}"))
    t0 = time.perf_counter()
    link.first.click()
    # The page's own title: the previous page's elements stay on screen until replaced.
    return wait_drawn(page, page.get_by_role("heading", name=info.title, level=1), t0)


def one_round(browser, workdir: Path, settle_s: float = 0.0) -> dict[str, float]:
    db = workdir / f"progress-{time.monotonic_ns()}.db"
    server = start_app(f"sqlite:///{db}", workdir)
    try:
        page = browser.new_page(viewport=VIEWPORT)
        up = time.perf_counter()  # /_stcore/health just answered
        page.goto(f"{server.url}/?learner=bench", wait_until="commit")
        page.wait_for_selector('[data-testid="stApp"]', timeout=120_000)
        shell = time.perf_counter() - up  # HTML + JS bundle loaded, before any script output
        home = wait_drawn(page, page.get_by_text("/ 5 completed"), up)
        row = {"server start": server.started_s, "home: app shell drawn": shell,
               "home after server up": home}
        page.wait_for_timeout(settle_s * 1000)
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
    print(f"| {'what':<24} | {'median':>7} | {'max':>7} | {'budget':>6} | ok  |")
    print(f"|{'-' * 26}|{'-' * 9}|{'-' * 9}|{'-' * 8}|-----|")
    for key in rows[0]:
        values = [r[key] for r in rows]
        limit = budget.get(key)
        ok = "" if limit is None else ("yes" if max(values) <= limit else "NO")
        print(f"| {key:<24} | {statistics.median(values):7.2f} | {max(values):7.2f} | "
              f"{'' if limit is None else f'{limit:.1f}':>6} | {ok:<3} |")


if __name__ == "__main__":
    main()
