"""Smoke test of bench/bench_app.py: it drives a real lesson page and prints a table row.

Not a timing assertion (the machine is shared): it checks that the script runs end to end for one
widget (a real server and Chromium), that the row names the widget with numeric columns and the
rerun's scope, and that --json holds the raw samples.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.ci import missing_dependency
from tests.e2e.conftest import browser_missing_reason

REPO = Path(__file__).resolve().parents[2]


def test_bench_app_prints_a_row_for_router_k(tmp_path: Path) -> None:
    if reason := browser_missing_reason():
        missing_dependency(f"bench_app drives Chromium: {reason}")
    out = tmp_path / "bench.json"
    env = {**os.environ, "MOE_LAB_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}"}
    done = subprocess.run([sys.executable, str(REPO / "bench" / "bench_app.py"), "--repeats", "1",
                           "--only", "router_k", "--json", str(out), "--settle", "0"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("2 ") and "router_k" in line]
    assert rows, done.stdout
    cells = [c.strip() for c in rows[-1].split("|")]
    assert cells[1] == "router_k"
    assert cells[2] == "fragment"  # the slider sits in a fragment: only that panel reran
    assert all(float(c) >= 0 for c in cells[3:6])  # median, p95, model ms
    assert cells[-1] in ("ok", "OVER")
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["repeats"] == 1 and [r["widget"] for r in data["rows"]] == ["router_k"]
    assert len(data["rows"][0]["samples_ms"]) == 1


def test_bench_app_rejects_an_unknown_widget() -> None:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "bench_app.py"), "--only", "no_such_key"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "no_such_key" in done.stderr
