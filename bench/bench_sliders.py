"""How long from a slider move to the redrawn chart, in a real browser (Lessons 2 and 3).

What it measures: a learner presses an arrow key on a slider; Streamlit sends the new value,
reruns only the panels that depend on it (keyed `st.fragment`s), ships the new figure, and Plotly
redraws. The latency is taken in the browser's own clock: `performance.now()` just before the key
press, and again at the first animation frame where the chart's figure data (`graphDiv.data`) has
changed. So it includes the slider's own event handling, the websocket both ways, the server's
rerun, figure serialisation and Plotly's redraw — everything the learner waits for.

How: starts `streamlit run app.py` on loopback with a throw-away progress database (the e2e
fixtures' `start_app`), opens each lesson in Debian's Chromium through Playwright, and presses
ArrowRight / ArrowLeft alternately (so values stay in range), waiting for the app to go idle
between presses. Warm-up presses are not counted.

    .venv/bin/python bench/bench_sliders.py                 # all sliders, 15 presses each
    .venv/bin/python bench/bench_sliders.py --reps 30 --only router_k
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_sliders.py   # the server inherits the env

Prints a table (p50 / p95 / max in ms per slider) and, with --json PATH, writes the raw samples.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_app, wait_for_app_idle  # noqa: E402


@dataclass(frozen=True)
class SliderCase:
    key: str  # the widget key (and URL parameter)
    page: str  # URL path of the lesson
    label: str  # the slider's visible label
    chart: str  # key of the chart that must change


L3 = "Experts_and_Sparse_Compute"
CASES = [
    SliderCase("router_k", "The_Router", "k (experts per token)", "router_sliders_chart"),
    SliderCase("router_temperature", "The_Router", "temperature τ", "router_sliders_chart"),
    SliderCase("router_noise", "The_Router", "router noise σ", "router_sliders_chart"),
    SliderCase("router_token", "The_Router", "Token to follow", "router_stage_chart"),
    SliderCase("router_ec_cf", "The_Router", "expert-choice capacity factor CF", "router_compare_chart"),
    SliderCase("experts_tokens", L3, "tokens in the batch T", "experts_dispatch_chart"),
    SliderCase("experts_k", L3, "experts per token k", "experts_dispatch_chart"),
    SliderCase("experts_block", L3, "block size BLOCK_M (rows per M-block)", "experts_blocks_chart"),
    SliderCase("experts_width", L3, "output columns of the GEMM (expert width F)", "experts_tiles_chart"),
    SliderCase("experts_block_n", L3, "BLOCK_N (columns per tile)", "experts_tiles_chart"),
    SliderCase("experts_capacity", L3, "capacity factor CF", "experts_capacity_chart"),
    SliderCase("experts_tile", L3, "M-block pid_m to follow", "experts_kernel_chart"),
]  # fmt: skip

CHART_JS = "key => JSON.stringify(document.querySelector(`.st-key-${key} .js-plotly-plot`)?.data ?? null)"
CHANGED_JS = f"""([key, before]) => {{
    if (({CHART_JS})(key) === before) return false;
    window.__moe_t1 = performance.now();
    return true;
}}"""


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(samples)
    rank = max(1, round(q / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def time_one_press(page, case: SliderCase, key: str, timeout_ms: int) -> float:
    """Press `key` once on the slider; ms from just before the press to the chart's new data."""
    box = page.locator('[data-testid="stSlider"]').filter(has=page.get_by_text(case.label, exact=True))
    slider = box.locator('input[type="range"]')
    slider.focus()
    before = page.evaluate(CHART_JS, case.chart)
    page.evaluate("window.__moe_t0 = performance.now()")
    slider.press(key)
    page.wait_for_function(CHANGED_JS, arg=[case.chart, before], polling="raf", timeout=timeout_ms)
    latency = page.evaluate("window.__moe_t1 - window.__moe_t0")
    wait_for_app_idle(page)  # the next press starts from a quiet app
    return float(latency)


def run_case(page, base_url: str, case: SliderCase, reps: int, warmup: int) -> list[float]:
    if case.page not in page.url:
        page.goto(f"{base_url}/{case.page}", wait_until="domcontentloaded")
        wait_for_app_idle(page, timeout_ms=180_000)
    samples = []
    for i in range(warmup + reps):
        latency = time_one_press(page, case, "ArrowRight" if i % 2 == 0 else "ArrowLeft", timeout_ms=60_000)
        if i >= warmup:
            samples.append(latency)
    return samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15, help="counted presses per slider")
    parser.add_argument("--warmup", type=int, default=2, help="presses per slider not counted")
    parser.add_argument("--only", nargs="*", help="widget keys to measure (default: all)")
    parser.add_argument("--json", type=Path, help="write the raw samples here")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if not args.only or c.key in args.only]

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server = start_app(f"sqlite:///{tmp}/progress.db", Path(tmp))
        results: dict[str, list[float]] = {}
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                for case in cases:
                    results[case.key] = run_case(page, server.url, case, args.reps, args.warmup)
                    print(f"  measured {case.key}: p50 {statistics.median(results[case.key]):.0f} ms",
                          file=sys.stderr, flush=True)  # fmt: skip
                browser.close()
        finally:
            server.stop()
    print_table(cases, results)
    if args.json:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        args.json.write_text(json.dumps({"measured_at": stamp, "samples_ms": results}, indent=1))


def print_table(cases: list[SliderCase], results: dict[str, list[float]]) -> None:
    print("| lesson | slider (key) | chart | n | p50 ms | p95 ms | max ms |")
    print("|---|---|---|---:|---:|---:|---:|")
    for case in cases:
        s = results[case.key]
        lesson = "2" if case.page == "The_Router" else "3"
        print(f"| {lesson} | {case.label} (`{case.key}`) | `{case.chart}` | {len(s)} | "
              f"{percentile(s, 50):.0f} | {percentile(s, 95):.0f} | {max(s):.0f} |")  # fmt: skip
    everything = [v for s in results.values() for v in s]
    if everything:
        print(f"| all | | | {len(everything)} | {percentile(everything, 50):.0f} | "
              f"{percentile(everything, 95):.0f} | {max(everything):.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
