"""Seeded random walks in a real Chromium: no sequence of clicks and keys may break a page.

The AppTest walks (tests/app/test_random_walk.py) drive widget values; this one drives what a
learner's browser really sends: sliders moved with the focus and arrow keys, text typed or
pasted and committed with Enter, options picked from open dropdowns, toggles and buttons
clicked (some twice in a row), expanders and tabs opened, a sidebar link followed and the
browser's Back button, and bursts of moves in quick succession that interrupt a running rerun.
Widgets are found by Streamlit's `data-testid`s on whatever the page shows now.

After every move, once the app is idle: no `stException` element, still connected (the idle
wait requires it, and the server process is alive), no console error or page error, and no new
traceback in the server's log (a lesson body that failed is logged, then replaced by a notice).
A failure names the page, the seed and the moves. MOE_LAB_WALK_BROWSER_MOVES (moves per page)
and MOE_LAB_WALK_BROWSER_SEED make a longer or another walk.
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

import pytest

try:
    from playwright.sync_api import Error as PlaywrightError
except ImportError:  # the `browser` fixture skips (or fails under CI) with the reason
    PlaywrightError = Exception

from tests.e2e.conftest import AppServer, screenshot, wait_for_app_idle

pytestmark = pytest.mark.e2e

REPO = next(p for p in Path(__file__).resolve().parents if (p / "app.py").exists())
PAGE_FILES = sorted((REPO / "pages").glob("*.py"))
# Legacy multipage URLs: pages/2_The_Router.py -> /The_Router
PATHS = {"app": "/", **{p.stem: "/" + re.sub(r"^\d+_", "", p.stem) for p in PAGE_FILES}}
MOVES = int(os.environ.get("MOE_LAB_WALK_BROWSER_MOVES", "6"))  # x 7 pages: about 2 minutes
SEED = int(os.environ.get("MOE_LAB_WALK_BROWSER_SEED", "0"))
FIRST_LOAD_MS = 180_000  # a lesson's first visit loads torch, trains or spawns processes
MOVE_IDLE_MS = 120_000  # a move may start a training run or the benchmark
ACTION_MS = 10_000

# What a learner can operate, by Streamlit 1.67's test ids (inside the main area or the sidebar).
CONTROLS = {
    "slider": '[data-testid="stSlider"] input[type="range"], [data-testid="stSlider"] [role="slider"]',
    "number": '[data-testid="stNumberInput"] input',
    "step": '[data-testid="stNumberInputStepUp"], [data-testid="stNumberInputStepDown"]',
    "text": '[data-testid="stTextInput"] input',
    "textarea": '[data-testid="stTextArea"] textarea',
    "select": '[data-testid="stSelectbox"] input',
    "radio": '[data-testid="stRadio"] label',
    "check": '[data-testid="stCheckbox"] label',
    "segment": '[data-testid="stButtonGroup"] button',
    "button": '[data-testid="stButton"] button, [data-testid="stFormSubmitButton"] button',
    "expander": '[data-testid="stExpander"] summary',
    "tab": '[data-testid="stTabs"] [role="tab"]',
}
WEIGHTS = {"slider": 6, "number": 3, "step": 2, "text": 4, "textarea": 3, "select": 3, "radio": 3,
           "check": 3, "segment": 2, "button": 3, "expander": 1, "tab": 1}
TEXTS = ("", "123 !!!", "the chef plays the ball", "we debug the python loop", "Ada 🎓🧑🏽‍💻 naïve 中文 عربى",
         "<b>x</b><img src=x onerror=alert(1)>", "x" * 10_000, "?!", " ", '{"num_experts": 0}')
NUMBERS = ("0", "-1", "1", "7", "999999", "-999999", "1e308", "0.5", "abc", "")
# The frontend of a page opened by its own URL probes /<Page>/_stcore/health and host-config
# for a base path before it finds the server's root: Streamlit's own 404s, not the course's.
BENIGN_CONSOLE = re.compile(r"/_stcore/(health|host-config)\b")


class Watch:
    """Console errors, page errors and new server-log tracebacks since the last look."""

    def __init__(self, page, server: AppServer) -> None:
        self.errors: list[str] = []
        self.server, self.log_seen = server, len(server.log())
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("console", self._console)

    def _console(self, msg) -> None:
        where = (msg.location or {}).get("url", "")
        if msg.type == "error" and not BENIGN_CONSOLE.search(where):
            self.errors.append(f"console error: {msg.text[:300]} ({where})")

    def problems(self, page) -> list[str]:
        found = list(self.errors)
        self.errors.clear()
        errors = page.locator('[data-testid="stException"]')
        if errors.count():
            found.append(f"stException on {page.url}: {errors.first.inner_text()[:500]}")
        if self.server.process.poll() is not None:
            found.append(f"the server exited with {self.server.process.returncode}")
        log = self.server.log()
        new, self.log_seen = log[self.log_seen:], len(log)
        if "Traceback" in new or "Uncaught app exception" in new:
            plain = re.sub(r"\x1b\[[0-9;]*m", "", new)  # Streamlit logs tracebacks in colour
            found.append("traceback in the server log:\n" + plain[-1500:])
        return found


def visible(page, kind: str) -> list:
    out = []
    for el in page.locator(CONTROLS[kind]).all():
        try:
            if el.is_visible() and el.is_enabled():
                out.append(el)
        except Exception:  # detached while we looked: the page redrew
            continue
    return out


def describe(el) -> str:
    text = el.evaluate("""e => e.getAttribute('aria-label')
        || e.querySelector('input')?.getAttribute('aria-label')
        || e.closest('[data-testid^="st"]:not([data-testid^="stBase"])')
             ?.querySelector('[data-testid="stWidgetLabel"]')?.innerText
        || e.innerText || e.textContent || ''""")
    return " ".join(str(text).split())[:60]


def act(page, rng: random.Random, kind: str, el) -> str:
    """Do one thing to control `el`; returns what was done, for the failure message."""
    if kind == "slider":
        key = rng.choice(["ArrowRight", "ArrowLeft", "Home", "End", "PageUp", "PageDown"])
        presses = rng.randint(1, 6) if key.startswith("Arrow") else 1
        el.focus()
        for _ in range(presses):
            el.press(key)
        return f"{key} x{presses}"
    if kind in ("number", "text", "textarea"):
        value = rng.choice(NUMBERS if kind == "number" else TEXTS)
        if kind != "number" and len(value) < 40 and rng.random() < 0.5:
            el.fill("")
            el.press_sequentially(value, delay=5)  # typed key by key
        else:
            el.fill(value, timeout=ACTION_MS)  # pasted
        el.press("Control+Enter" if kind == "textarea" else "Enter")
        return f"{'typed' if kind != 'number' else 'entered'} {value[:30]!r}{'…' if len(value) > 30 else ''}"
    if kind == "select":
        el.focus()
        el.press("ArrowDown")  # opens the list, as a keyboard user would
        page.locator('[role="option"]').first.wait_for(timeout=ACTION_MS)
        options = page.locator('[role="option"]').all()
        if not options:
            page.keyboard.press("Escape")
            return "opened, no options"
        choice = rng.randrange(len(options))
        label = options[choice].inner_text()[:40]
        options[choice].click(timeout=ACTION_MS)
        return f"picked {label!r}"
    if kind == "button" and rng.random() < 0.25:
        el.dblclick(timeout=ACTION_MS)
        return "double-click"
    el.click(timeout=ACTION_MS)
    return "click"


def follow_link_and_back(page, rng: random.Random) -> str | None:
    links = [a for a in page.locator('[data-testid="stSidebar"] [data-testid="stPageLink"] a').all()
             if a.is_visible()]
    if not links:
        return None
    link = rng.choice(links)
    label = " ".join(link.inner_text().split())[:40]
    depth = page.evaluate("history.length")
    link.click(timeout=ACTION_MS)
    wait_for_app_idle(page, FIRST_LOAD_MS)
    if page.evaluate("history.length") == depth:  # a link to this very page: no entry to go back to
        return f"sidebar link {label!r} (no new history entry)"
    page.go_back()
    return f"sidebar link {label!r}, then Back"


def move(page, rng: random.Random) -> str:
    """One move (or a burst of 2-3 without waiting in between); what was done, for the report.
    A control that vanished or would not open while we acted is noted, not failed: that is the
    walk racing the page, not the app breaking (the app's health is checked after the move)."""
    if rng.random() < 0.07 and (done := follow_link_and_back(page, rng)):
        return done
    kinds = [k for k in CONTROLS for _ in range(WEIGHTS[k])]
    burst = rng.randint(2, 3) if rng.random() < 0.15 else 1
    done = []
    for _ in range(burst):
        for _try in range(5):
            kind = rng.choice(kinds)
            if controls := visible(page, kind):
                el = rng.choice(controls)
                try:
                    label = describe(el)
                    done.append(f"{kind} {label!r}: {act(page, rng, kind, el)}")
                except PlaywrightError as exc:
                    done.append(f"{kind}: could not ({str(exc).splitlines()[0][:80]})")
                    page.keyboard.press("Escape")
                break
    return " + ".join(done) or "nothing to do"


@pytest.mark.parametrize("name", list(PATHS))
def test_random_walk_in_chromium(page, app_server: AppServer, name: str) -> None:
    rng = random.Random(f"{name}:{SEED}")
    watch = Watch(page, app_server)
    url = app_server.url + PATHS[name]
    page.goto(url, wait_until="domcontentloaded")
    wait_for_app_idle(page, FIRST_LOAD_MS)
    page.set_default_timeout(ACTION_MS)
    done: list[str] = []
    problems = watch.problems(page)
    for _ in range(MOVES):
        if problems:
            break
        try:
            done.append(move(page, rng))
            wait_for_app_idle(page, MOVE_IDLE_MS)
        except Exception as exc:  # the idle wait timed out: the app never settled
            done.append(f"... {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            problems = [f"the app did not settle: {exc}"[:600]]
            break
        problems = watch.problems(page)
    if problems:
        screenshot(page, f"random-walk-{name}-{SEED}")
    assert not problems, (f"{PATHS[name]} (seed {SEED}) after {len(done)} moves:\n"
                          + "\n".join(f"  {i}. {m}" for i, m in enumerate(done, 1))
                          + "\n" + "\n".join(problems) + "\nmoves as JSON: " + json.dumps(done))
