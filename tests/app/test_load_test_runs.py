"""Smoke tests of bench/load_test.py: it runs end to end, and its browsers really run niced.

Not a timing assertion (the machine is shared). The nice check guards a measured fault: run as
root, Chromium raised its own priority (browser and GPU process to -8, renderers back to 0), so
the "niced" browsers of the load test had competed with the server at full priority.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.load_server import niced_browser
from tests.ci import missing_dependency
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, browser_missing_reason

REPO = Path(__file__).resolve().parents[2]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _nice(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
    except (OSError, ValueError, IndexError):
        return None


def _is_chromium(pid: int) -> bool:
    try:
        return "chrom" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return False


def test_niced_browser_keeps_every_chromium_process_at_nice_19(tmp_path: Path) -> None:
    if reason := browser_missing_reason():
        missing_dependency(f"the load test drives Chromium: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=niced_browser(CHROMIUM, tmp_path), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context().new_page()
            page.set_content("<p>two renderers, a GPU and a network process by now</p>")
            niceness = {pid: _nice(pid) for pid in _descendants(os.getpid()) if _is_chromium(pid)}
        finally:
            browser.close()
    assert len(niceness) >= 3, niceness  # browser, renderer(s), GPU/utility processes
    assert set(niceness.values()) == {19}, niceness


def test_load_test_runs_one_learner_and_writes_its_json(tmp_path: Path) -> None:
    if reason := browser_missing_reason():
        missing_dependency(f"the load test drives Chromium: {reason}")
    out = tmp_path / "load.json"
    done = subprocess.run([sys.executable, str(REPO / "bench" / "load_test.py"), "--learners", "1",
                           "--seconds", "6", "--no-warmup", "--think", "0", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| learners |" in done.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["learners"] == 1 and data["pages"] >= 1
    assert data["errors"] == 0, data["messages"]
    assert 0 < data["machine_cpu_pct"] <= 100 and 0 <= data["browsers_cpu_pct"] <= data["machine_cpu_pct"]
    assert data["server_peak_pss_mb"] > 0
