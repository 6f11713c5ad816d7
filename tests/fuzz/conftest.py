"""Fuzz tests: one throw-away SQLite progress file per test module, and the shared browser thread."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lessons.course import progress
from tests.deploy._browser import browser_thread  # noqa: F401 (a fixture)


@pytest.fixture(scope="module", autouse=True)
def module_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """MOE_LAB_DATABASE_URL -> a fresh SQLite file for this module (AppTest runs in-process)."""
    path = tmp_path_factory.mktemp("fuzz-db") / "progress.db"
    old = os.environ.get("MOE_LAB_DATABASE_URL")
    os.environ["MOE_LAB_DATABASE_URL"] = f"sqlite:///{path}"
    yield path
    progress.dispose()
    if old is None:
        del os.environ["MOE_LAB_DATABASE_URL"]
    else:
        os.environ["MOE_LAB_DATABASE_URL"] = old
