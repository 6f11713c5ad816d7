"""One rule for tests that need a system package (Chromium, PostgreSQL, nginx)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing_dependency(message: str) -> NoReturn:
    """Skip on a developer's machine that lacks the package; fail under CI, which installs it
    (.ci/run), so a broken install can never turn into a green run of skipped tests."""
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but a test dependency is missing: {message}", pytrace=False)
    pytest.skip(message)
