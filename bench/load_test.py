"""A class at once: N concurrent learners in real Chromium contexts against one MoE Lab server.

    python bench/load_test.py                          # 8 learners, 60 s, starts its own server
    python bench/load_test.py --learners 16 --seconds 120 --json out.json
    python bench/load_test.py --url http://127.0.0.1:8080   # an existing server or nginx

Each learner has its own browser context (its own Streamlit session) and, until time is up,
goes round the course: open a lesson (by URL the first time, then by its sidebar link, as a
learner moves through the course), move two of its sliders (each move timed from the key
press to the first change of a chart in the page, measured in the browser), take the quiz once,
and on Lesson 4 train the model, looking at the result for about --think seconds after each
step (a class reads; --think 0 makes every learner act without pause). Reported: p50/p95/max
of widget change -> updated chart, the seconds of Lesson 5's real expert-parallel runs, errors
(exception elements, lost connections, console errors), "busy, try again" answers (counted apart:
they are the server's cap on concurrent training working as designed), the server's peak RSS
(its whole process tree: Lesson 5 starts rank processes; summed RSS and summed PSS, see
bench/load_server.py), its own time per widget change and page run (a server it starts logs its
runs through bench/server_runs.py) and its share of the machine's CPU — on
one machine the browsers compete with the server, and this says which of them the time went to.
Traffic goes only to the given URL (loopback by default); every loop is bounded by --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

logging.getLogger("streamlit").setLevel(logging.ERROR)  # importing page code outside a server warns

from bench.load_server import RssSampler, machine_cpu_ticks, niced_browser, start_server, stop_server  # noqa: E402
from bench.server_runs import read_runs  # noqa: E402
from lessons.course.quiz import Quiz, load_quiz  # noqa: E402
from lessons.course.text import LESSONS  # noqa: E402
from lessons.lesson4_balancing.runs import BUSY  # noqa: E402  (the "busy, try again" text)

CHROMIUM = os.environ.get("MOE_LAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]
LESSON_PATHS = {1: "What_is_MoE", 2: "The_Router", 3: "Experts_and_Sparse_Compute", 4: "Load_Balancing",
                5: "MoE_at_Scale"}
SLIDERS = {  # sliders whose every move redraws a chart, per lesson
    1: ["top-k: experts per token", "Experts per token k"],
    2: ["k (experts per token)", "temperature τ"],
    3: ["tokens in the batch T", "capacity factor CF"],
    5: ["Top-k", "Sequences per GPU"],
}
# Lesson 5's traffic sliders start a real expert-parallel run (a subprocess and its rank processes)
# for every new setting: like Lesson 4's Train, a run that takes seconds by design, so it is timed
# apart ("ep run") rather than as a chart redraw.
RUN_SLIDERS = {"Top-k"}
IDLE_JS = """() => { const a = document.querySelector('[data-testid="stApp"]');
  return !!a && a.dataset.testScriptState === 'notRunning'
    && a.dataset.testConnectionState === 'CONNECTED'
    && !document.querySelector('[data-testid="stSkeleton"]'); }"""
# Stamp the first DOM change inside any chart after this call (Streamlit may patch or replace it).
WATCH_JS = """() => { window.__t0 = performance.now(); window.__tChart = null;
  const inChart = n => n && n.nodeType === 1 && (n.closest('[data-testid="stPlotlyChart"]')
      || n.querySelector && n.querySelector('[data-testid="stPlotlyChart"]'));
  const obs = new MutationObserver(ms => { for (const m of ms) {
      const t = m.target.nodeType === 1 ? m.target : m.target.parentElement;
      if ((t && t.closest('[data-testid="stPlotlyChart"]')) || [...m.addedNodes].some(inChart)) {
        window.__tChart = performance.now(); obs.disconnect(); return; } } });
  obs.observe(document.querySelector('[data-testid="stMain"]'),
              {subtree: true, childList: true, attributes: true, characterData: true});
  window.__obs = obs; }"""
STEP_TIMEOUT_MS = 30_000
TRAIN_TIMEOUT_MS = 90_000


@dataclass
class Stats:
    latencies_ms: list[float] = field(default_factory=list)  # widget change -> updated chart
    moves: list[tuple[float, str, float]] = field(default_factory=list)  # (when, slider, ms): when it lags
    ep_run_ms: list[float] = field(default_factory=list)  # Lesson 5 traffic slider -> run's chart
    quiz_ms: list[float] = field(default_factory=list)  # submit -> grade shown
    train_ms: list[float] = field(default_factory=list)  # Train -> final charts
    page_s: list[float] = field(default_factory=list)  # open a lesson -> its first run drawn
    pages: int = 0
    quizzes: int = 0
    trainings: int = 0
    busy: int = 0
    exceptions: int = 0
    disconnects: int = 0
    console_errors: int = 0
    timeouts: int = 0
    probes: int = 0  # Streamlit's base-path probes at deep links (404s by design, not errors)
    messages: dict[str, int] = field(default_factory=dict)  # distinct message -> times seen
    opened: list[tuple[float, int, float]] = field(default_factory=list)  # (when, lesson, seconds)
    started: float = 0.0  # time.monotonic() when the measured part began
    cpu_ticks: tuple[int, ...] = (0, 0, 0)  # the machine's (busy, niced, total) ticks over that part

    def note(self, kind: str, text: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        line = f"{kind}: {text[:240]}"
        self.messages[line] = self.messages.get(line, 0) + 1


async def wait_idle(page, timeout_ms: int = STEP_TIMEOUT_MS, settle_ms: int = 150) -> None:
    """Idle twice, `settle_ms` apart: a rerun triggered by the last action has finished."""
    # Poll every 50 ms, not every animation frame: eight pages polling per frame load the CPU.
    await page.wait_for_function(IDLE_JS, timeout=timeout_ms, polling=50)
    await page.wait_for_timeout(settle_ms)
    await page.wait_for_function(IDLE_JS, timeout=timeout_ms, polling=50)


async def open_lesson(page, url: str, timeout_ms: int = 60_000) -> float:
    """Load a lesson by URL and wait for its whole first run (the quiz at the bottom drawn, then
    idle); returns the seconds that took."""
    start = time.perf_counter()
    await page.goto(url, wait_until="domcontentloaded")
    await page.get_by_role("button", name="Submit answers").wait_for(timeout=timeout_ms)
    await wait_idle(page, timeout_ms)
    return time.perf_counter() - start


async def follow_link(page, lesson: int, timeout_ms: int = 60_000) -> float:
    """Go to a lesson as a learner does once the course is open: its link in the sidebar (the
    page changes over the same connection; the app shell is not loaded again)."""
    info = LESSONS[lesson - 1]
    links = page.locator('[data-testid="stSidebar"] [data-testid="stPageLink"] a')
    start = time.perf_counter()
    await links.filter(has=page.locator("p", has_text=f"{lesson}. {info.title}")).first.click()
    await page.get_by_role("heading", name=info.title, level=1).wait_for(timeout=timeout_ms)
    await page.get_by_role("button", name="Submit answers").wait_for(timeout=timeout_ms)
    await wait_idle(page, timeout_ms)
    return time.perf_counter() - start


async def check_exceptions(page, stats: Stats, where: str) -> None:
    shown = await page.locator('[data-testid="stException"]').all_inner_texts()
    for text in shown:
        stats.note("exceptions", f"{where}: {text}")


async def move_slider(page, label: str, key: str, stats: Stats) -> None:
    # Streamlit 1.67's slider thumb is a visually hidden <input type="range"> (react-aria).
    box = page.locator('[data-testid="stSlider"]').filter(has_text=label).first
    await box.scroll_into_view_if_needed()
    slider = box.locator('input[type="range"]').first
    await slider.focus()
    await page.evaluate(WATCH_JS)
    await page.keyboard.press(key)
    try:
        await page.wait_for_function("() => window.__tChart !== null", timeout=STEP_TIMEOUT_MS, polling=50)
        ms = await page.evaluate("() => window.__tChart - window.__t0")
        (stats.ep_run_ms if label in RUN_SLIDERS else stats.latencies_ms).append(ms)
        stats.moves.append((round(time.monotonic() - stats.started, 1), label, round(ms, 1)))
    except Exception:
        await page.evaluate("() => window.__obs && window.__obs.disconnect()")
        stats.note("timeouts", f"no chart changed after moving {label!r}")
    await wait_idle(page)


async def take_quiz(page, quiz: Quiz, stats: Stats) -> None:
    submit = page.get_by_role("button", name="Submit answers")
    form = page.locator('[data-testid="stForm"]').filter(has=submit).first
    offset = 0
    for i, q in enumerate(quiz.questions, start=1):
        label = f"Answer to question {i}"
        if q.kind in ("single", "truefalse"):
            index = q.answer if q.kind == "single" else (0 if q.answer else 1)
            await form.get_by_role("radiogroup", name=label, exact=True).locator("label").nth(index).click()
        elif q.kind == "multi":
            for j in q.answer:
                await form.locator('[data-testid="stCheckbox"]').nth(offset + j).locator("label").click()
            offset += len(q.choices)
        else:
            await form.get_by_label(label, exact=True).fill(repr(q.answer))
            await form.get_by_label(label, exact=True).press("Tab")
    start = time.perf_counter()
    await submit.click()
    await page.get_by_text("Lesson passed").first.wait_for(timeout=STEP_TIMEOUT_MS)
    stats.quiz_ms.append((time.perf_counter() - start) * 1e3)
    stats.quizzes += 1
    await wait_idle(page)


async def train(page, stats: Stats) -> None:
    """Pick a seed of its own (or every learner gets the first run from the cache), press Train;
    count a "busy" answer, else wait for the run to finish (Stop button gone)."""
    await page.locator(".st-key-balance_seed input").fill(str(random.randrange(10_000)))
    start = time.perf_counter()
    await page.get_by_role("button", name="Train").click()
    deadline, seen_running = start + TRAIN_TIMEOUT_MS / 1000, False
    while True:
        await page.wait_for_timeout(200)
        if await page.get_by_text(BUSY).count():
            stats.busy += 1
            await wait_idle(page)
            return
        running = await page.get_by_role("button", name="Stop").count() > 0
        seen_running = seen_running or running
        settled = seen_running or time.perf_counter() - start > 3  # a cached run shows no Stop at all
        if not running and settled and await page.evaluate(IDLE_JS):
            break
        if time.perf_counter() > deadline:
            stats.note("timeouts", "training did not finish")
            return
    if await page.get_by_text("This run failed").count():
        stats.note("exceptions", "a training run failed")
    stats.train_ms.append((time.perf_counter() - start) * 1e3)
    stats.trainings += 1


# Streamlit's frontend, opened at a deep link such as /The_Router, first asks /The_Router/_stcore/...
# to find its base path; those 404s are Streamlit's own probing, counted apart from errors.
PROBE = re.compile(r"/[^/]+/_stcore/(health|host-config)$")


def on_console(message, stats: Stats) -> None:
    if message.type != "error":
        return
    url = (message.location or {}).get("url", "")
    if PROBE.search(url) and "404" in message.text:
        stats.probes += 1
    else:
        stats.note("console_errors", f"{message.text} {url}".strip())


def watch(page, stats: Stats, closing: list[bool]) -> None:
    page.on("console", lambda m: on_console(m, stats))
    page.on("pageerror", lambda e: stats.note("console_errors", str(e)))

    def on_socket(ws) -> None:
        if "/_stcore/stream" in ws.url:
            ws.on("close", lambda _ws: closing[0] or stats.note("disconnects", ws.url))

    page.on("websocket", on_socket)


async def look(think_s: float) -> None:
    """A learner reads what changed before the next action: `think_s` on average, jittered (0.5-1.5x)
    so the class does not act in lockstep."""
    if think_s > 0:
        await asyncio.sleep(think_s * random.uniform(0.5, 1.5))


async def learner(browser, base: str, index: int, deadline: float, stats: Stats, delay: float,
                  think_s: float = 0.0) -> None:  # fmt: skip
    await asyncio.sleep(delay)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    closing = [False]
    watch(page, stats, closing)
    name, passed, turn = f"load-{index}-{os.getpid()}", set(), 0
    order = [2, 4, 1, 3, 5]
    try:
        while time.monotonic() < deadline:
            lesson = order[(index + turn) % len(order)]
            turn += 1
            try:
                opened = time.monotonic() - stats.started
                if turn == 1:  # the course opens once, by URL; then the learner follows links
                    url = f"{base}/{LESSON_PATHS[lesson]}?learner={name}"
                    stats.page_s.append(await open_lesson(page, url))
                else:
                    stats.page_s.append(await follow_link(page, lesson))
                stats.opened.append((round(opened, 1), lesson, round(stats.page_s[-1], 2)))
                stats.pages += 1
                await look(think_s)
                for label in SLIDERS.get(lesson, []):
                    for key in ("ArrowRight", "ArrowLeft"):
                        if time.monotonic() < deadline:
                            await move_slider(page, label, key, stats)
                            await look(think_s)
                if lesson == 4 and time.monotonic() < deadline:
                    await train(page, stats)
                    await look(think_s)
                if lesson not in passed and time.monotonic() < deadline:
                    await take_quiz(page, load_quiz(lesson), stats)
                    passed.add(lesson)
                await check_exceptions(page, stats, f"lesson {lesson}")
            except Exception as exc:  # a step that timed out: count it, carry on with the next lesson
                stats.note("timeouts", f"lesson {lesson}: {type(exc).__name__}: {exc}")
    finally:
        closing[0] = True
        await context.close()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def server_side(run_log: Path | None, since: float) -> dict[str, float]:
    """p50/p95 of the server's own time per widget change (fragment reruns) and per page run, from
    bench/server_runs.py's log: the server's share of what the browsers waited for."""
    if run_log is None:
        return {}
    runs = [r for r in read_runs(run_log) if r["received"] >= since]
    widget = [1e3 * (r["ended"] - r["received"]) for r in runs if r["fragments"]]
    page = [1e3 * (r["ended"] - r["received"]) for r in runs if not r["fragments"]]
    return {"server_widget_p50_ms": round(pct(widget, 0.5), 1),
            "server_widget_p95_ms": round(pct(widget, 0.95), 1),
            "server_page_p50_ms": round(pct(page, 0.5), 1), "server_page_p95_ms": round(pct(page, 0.95), 1)}


def report(args, stats: Stats, rss_mb: float | None, pss_mb: float | None, wall_s: float,
           server_cpu_s: float | None, server: dict[str, float]) -> dict:
    lat = stats.latencies_ms
    row = {
        "learners": args.learners, "think_s": args.think, "seconds": round(wall_s, 1),
        "slider_moves": len(lat),
        "chart_p50_ms": round(pct(lat, 0.5), 1), "chart_p95_ms": round(pct(lat, 0.95), 1),
        "chart_max_ms": round(max(lat), 1) if lat else float("nan"),
        "page_p50_s": round(pct(stats.page_s, 0.5), 2), "page_max_s": round(max(stats.page_s, default=0), 2),
        "quiz_p50_ms": round(pct(stats.quiz_ms, 0.5), 1),
        "ep_run_p50_s": round(pct(stats.ep_run_ms, 0.5) / 1e3, 2),
        "train_p50_s": round(pct(stats.train_ms, 0.5) / 1e3, 2),
        "pages": stats.pages, "quizzes": stats.quizzes, "trainings": stats.trainings, "busy": stats.busy,
        "errors": stats.exceptions + stats.disconnects + stats.console_errors,
        "exceptions": stats.exceptions, "disconnects": stats.disconnects,
        "console_errors": stats.console_errors, "timeouts": stats.timeouts, "deep_link_probes": stats.probes,
        **server,
        "server_peak_rss_mb": round(rss_mb, 1) if rss_mb is not None else None,
        "server_peak_pss_mb": round(pss_mb, 1) if pss_mb is not None else None,
        # Share of the machine's cores the server used: the rest went to the browsers (and others).
        "server_cpu_pct": (round(100 * server_cpu_s / wall_s / (os.cpu_count() or 1), 1)
                           if server_cpu_s is not None else None),
        # The whole machine's, and the niced browsers' part of it: is the machine saturated?
        "machine_cpu_pct": round(100 * stats.cpu_ticks[0] / max(stats.cpu_ticks[2], 1), 1),
        "browsers_cpu_pct": round(100 * stats.cpu_ticks[1] / max(stats.cpu_ticks[2], 1), 1),
    }
    print("| " + " | ".join(row) + " |")
    print("|" + "---|" * len(row))
    print("| " + " | ".join(str(v) for v in row.values()) + " |")
    for message, times in sorted(stats.messages.items(), key=lambda kv: -kv[1]):
        print(f"  - {times}x {message}")
    return {**row, "messages": stats.messages, "latencies_ms": [round(v, 1) for v in lat],
            "moves": stats.moves, "opened": stats.opened}


async def warm_up(browser, base: str) -> None:
    """One visit to every lesson so imports and shared caches are not counted as load."""
    context = await browser.new_context()
    page = await context.new_page()
    for path in LESSON_PATHS.values():
        await open_lesson(page, f"{base}/{path}?learner=warm-up", timeout_ms=180_000)
    await context.close()


async def run(args, base: str, sampler: RssSampler) -> tuple[Stats, float, float]:
    """(stats, wall seconds, time.monotonic() when the measured part began: after the warm-up)."""
    from playwright.async_api import async_playwright

    stats = Stats()
    async with async_playwright() as pw:
        # At nice 19 (see niced_browser): the browsers get what the server leaves.
        browser = await pw.chromium.launch(executable_path=niced_browser(CHROMIUM, Path(tempfile.mkdtemp())),
                                           args=CHROMIUM_ARGS)
        if not args.no_warmup:
            await warm_up(browser, base)
        sampler.mark()
        stats.cpu_ticks = machine_cpu_ticks()
        start = stats.started = time.monotonic()
        deadline = start + args.seconds
        tasks = [learner(browser, base, i, deadline, stats, args.ramp * i / args.learners, args.think)
                 for i in range(args.learners)]
        # Bounded: a learner mid-step when time is up finishes that step, or is cancelled here.
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=args.seconds + 120)
        wall = time.monotonic() - start
        stats.cpu_ticks = tuple(b - a for a, b in zip(stats.cpu_ticks, machine_cpu_ticks(), strict=True))
        await browser.close()
    return stats, wall, start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--url", help="an already running MoE Lab (default: start one on loopback)")
    parser.add_argument("--server-pid", type=int, help="pid whose RSS to sample (found from --url's port)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--no-warmup", action="store_true", help="count the first visits too")
    parser.add_argument("--think", type=float, default=2.0,
                        help="seconds a learner looks at a page or chart before the next action, on "
                             "average (default 2; 0 = act without pause, a stress test)")
    parser.add_argument("--ramp", type=float, default=8.0,
                        help="seconds over which learners arrive, as a class does (default 8)")
    args = parser.parse_args()
    if args.learners < 1 or args.seconds <= 0:
        parser.error("--learners and --seconds must be positive")

    server, run_log = None, None
    if args.url:
        base = args.url.rstrip("/")
    else:
        tmp = Path(tempfile.mkdtemp(prefix="moe-lab-load-"))
        run_log = tmp / "runs.jsonl"
        server = start_server(REPO, f"sqlite:///{tmp / 'progress.db'}", tmp / "server.log", run_log=run_log)
        base = server.url
    # The learners' side runs at nice 19 from here on, like their browsers: this script and the
    # Playwright driver it starts act for people on other machines, and polling eight pages costs
    # a tenth of a core. Times are taken inside the pages, so this delays no measurement.
    os.nice(19)
    sampler = RssSampler.for_url(base, args.server_pid)
    sampler.start()
    try:
        stats, wall, measured_from = asyncio.run(run(args, base, sampler))
    finally:
        rss_mb = sampler.stop()
        if server is not None:
            stop_server(server)
    result = report(args, stats, rss_mb, sampler.peak_pss_mb, wall, sampler.cpu_s,
                    server_side(run_log, measured_from))
    if args.json:
        args.json.write_text(json.dumps({"config": vars(args) | {"json": str(args.json)}, **result}, indent=2,
                                        default=str))


if __name__ == "__main__":
    main()
