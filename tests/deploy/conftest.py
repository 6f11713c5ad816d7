"""Fixtures for the multi-replica tests: a real cluster (deploy/cluster.sh) and a browser thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy._browser import browser_thread  # noqa: F401 (a fixture)
from tests.deploy._cluster import Cluster, require_services


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """PostgreSQL + two Streamlit replicas + nginx, started by deploy/cluster.sh; cleaned after."""
    require_services()
    run = Cluster(Path(tmp_path_factory.mktemp("cluster")) / "state")
    try:
        run.sh("start")
        yield run
    finally:
        run.sh("clean", check=False)
