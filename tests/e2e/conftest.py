"""Browser end-to-end fixtures: a real `streamlit run app.py` and Debian's Chromium via Playwright.

Each test module gets its own server on a free loopback port and its own SQLite progress file
(so modules never see each other's progress); `restart_app` starts a fresh server on the same
database, for "survives a restart" checks. The browser is launched once per session.

Without a browser (Playwright or /usr/bin/chromium missing) the tests are skipped with the reason
— except when `CI` is set: then they FAIL, so a CI run never passes by testing nothing.

Helpers for lesson tests (import them from `tests.e2e.conftest`): `wait_for_app_idle`, `goto`,
`click_nav`, `move_slider`, `assert_no_exception`, `screenshot`. Screenshots go to
`tests/e2e/artifacts/` (gitignored).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ci import missing_dependency

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = os.environ.get("MOE_LAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
SERVER_START_TIMEOUT_S = 60.0
IDLE_TIMEOUT_MS = 90_000  # first visits took 24-42 s on a loaded 2-core box
VIEWPORT = {"width": 1280, "height": 900}

# --- the streamlit server ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AppServer:
    url: str  # http://127.0.0.1:PORT
    db_url: str  # the MOE_LAB_DATABASE_URL the server uses
    process: subprocess.Popen
    log_path: Path
    started_s: float  # seconds from spawn until /_stcore/health answered

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start_app(db_url: str, log_dir: Path, port: int | None = None, *,
              launcher: tuple[str, ...] = ("-m", "streamlit"), env: dict[str, str] | None = None,
              ) -> AppServer:  # fmt: skip
    """Spawn `streamlit run app.py` on 127.0.0.1 and wait until /_stcore/health says ok.

    `launcher` replaces `-m streamlit` (bench/server_runs.py logs each run's server time);
    `env` adds variables for the server."""
    port = port or free_port()
    log_path = log_dir / f"streamlit-{port}.log"
    env = {**os.environ, "MOE_LAB_DATABASE_URL": db_url, "PYTHONUNBUFFERED": "1", **(env or {})}
    cmd = [sys.executable, *launcher, "run", "app.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true",
           "--browser.gatherUsageStats", "false"]
    t0 = time.perf_counter()
    with log_path.open("wb") as log:
        process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = AppServer(f"http://127.0.0.1:{port}", db_url, process, log_path, 0.0)
    deadline = t0 + SERVER_START_TIMEOUT_S
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=1) as r:
                if r.status == 200 and r.read().strip() == b"ok":
                    server.started_s = time.perf_counter() - t0
                    return server
        except OSError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"streamlit did not become healthy in {SERVER_START_TIMEOUT_S}s:\n{server.log()}")


@pytest.fixture(scope="module")
def app_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh SQLite progress database for this test module."""
    return f"sqlite:///{tmp_path_factory.mktemp('progress') / 'progress.db'}"


@pytest.fixture(scope="module")
def app_server(app_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    server = start_app(app_db, tmp_path_factory.mktemp("logs"))
    yield server
    server.stop()


@pytest.fixture
def restart_app(app_server: AppServer, tmp_path: Path):
    """Call to stop the module's server and start a fresh one on the same database."""
    started: list[AppServer] = []

    def restart() -> AppServer:
        app_server.stop()
        fresh = start_app(app_server.db_url, tmp_path)
        started.append(fresh)
        return fresh

    yield restart
    for server in started:
        server.stop()


# --- the browser -------------------------------------------------------------------------------


def browser_missing_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -r requirements-dev.txt)"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set MOE_LAB_CHROMIUM)"
    return None


@pytest.fixture(scope="session")
def browser():
    reason = browser_missing_reason()
    if reason:
        missing_dependency(f"e2e browser unavailable: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        screenshot(page, f"FAILED-{request.node.name}")
    context.close()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)  # lets `page` screenshot a failed test


# --- helpers other lesson tests reuse -------------------------------------------------------

APP_IDLE = ('[data-testid="stApp"][data-test-script-state="notRunning"]'
             '[data-test-connection-state="CONNECTED"]')


def wait_for_app_idle(page, timeout_ms: int = IDLE_TIMEOUT_MS, settle_ms: int = 250) -> None:
    """Wait until the script run (and any rerun it triggered) has finished and the page is drawn.

    Streamlit marks the app root with its run state; we require "notRunning" twice, `settle_ms`
    apart, because a click's rerun may not have started yet when we first look.
    """
    deadline = time.perf_counter() + timeout_ms / 1000
    while True:
        remaining = max(1, int((deadline - time.perf_counter()) * 1000))
        page.wait_for_selector(APP_IDLE, timeout=remaining)
        page.wait_for_timeout(settle_ms)
        if page.locator(APP_IDLE).count() == 1 and page.locator('[data-testid="stSkeleton"]').count() == 0:
            return
        if time.perf_counter() > deadline:
            raise TimeoutError(f"app still running after {timeout_ms} ms")


def goto(page, url: str, timeout_ms: int = IDLE_TIMEOUT_MS) -> None:
    page.goto(url, wait_until="domcontentloaded")
    wait_for_app_idle(page, timeout_ms)


def click_nav(page, label: str | re.Pattern, timeout_ms: int = IDLE_TIMEOUT_MS) -> None:
    """Click a sidebar page link by its visible label and wait for the new page (a lesson's first
    visit may train a model or start processes: give those a longer `timeout_ms`)."""
    # Match the label's own text: the link's inner text also holds the icon's ligature name.
    links = page.locator('[data-testid="stSidebar"] [data-testid="stPageLink"] a')
    links.filter(has=page.locator("p", has_text=label)).first.click()
    wait_for_app_idle(page, timeout_ms)


def move_slider(page, label: str, presses: int, key: str = "ArrowRight") -> None:
    """Focus the slider labelled `label` and press an arrow key `presses` times (keyboard use)."""
    # Streamlit 1.67 renders a slider as <input type="range"> (implicit ARIA role "slider").
    slider = page.get_by_role("slider", name=label).first
    slider.focus()
    for _ in range(presses):
        slider.press(key)
    wait_for_app_idle(page)


def assert_no_exception(page) -> None:
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, f"Streamlit exception on {page.url}: {errors.first.inner_text()}"


def screenshot(page, name: str, full_page: bool = True, max_height: int = 16000) -> Path:
    """Save a PNG under tests/e2e/artifacts/. Streamlit scrolls inside its main container, so for
    a full page the viewport is stretched to that container's height for the shot."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    size = page.viewport_size or VIEWPORT
    page.mouse.move(size["width"] - 1, size["height"] - 1)  # no hover tooltip in the picture
    if full_page:
        height = page.evaluate(
            "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
            "[data-testid=stSidebarContent]')].map(e => e.scrollHeight), window.innerHeight)")
        page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, max_height)})
        page.wait_for_timeout(300)  # let charts re-layout at the new size
    try:
        page.screenshot(path=str(path))
    finally:
        page.set_viewport_size(size)
    return path
