"""Two Streamlit replicas behind nginx on one PostgreSQL, started by `deploy/cluster.sh`.

Three learners work through three doors — replica A directly, replica B directly, and nginx —
and every door shows every learner the same progress: the app keeps no state that another
replica cannot see. The quiz is passed in a real browser; the database is checked with psql.
Then the proxy itself: cookie affinity keeps a browser (page, scripts and WebSocket) on one
replica, browsers spread over both, and a replica killed with SIGKILL is routed around.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict

import pytest

from tests.deploy._browser import (
    BrowserThread,
    completed_on_home,
    exceptions,
    pass_quiz,
    sidebar_text,
)
from tests.deploy._cluster import Cluster, http_get

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

LEARNERS = ("Ann via A", "Ben via B", "Cy via nginx")


def test_progress_is_shared_by_every_replica(cluster: Cluster, browser_thread: BrowserThread) -> None:
    a, b = cluster.replica_urls
    doors = {"A": a, "B": b, "nginx": cluster.nginx_url}

    # Each learner passes Lesson 1's quiz through their own door.
    for learner, door in zip(LEARNERS, (a, b, cluster.nginx_url), strict=True):
        def take(page, learner=learner, door=door) -> None:
            pass_quiz(page, door, learner, 1)
            assert not exceptions(page), exceptions(page)
            assert "1 / 5 completed" in sidebar_text(page)
            assert "not saved" not in sidebar_text(page) + page.content()
        browser_thread.run(take, name=f"pass-{learner}")

    # The database holds exactly those three passes (read with psql, not through the app).
    assert cluster.passed_lessons() == {name: [1] for name in LEARNERS}

    # Every other door shows each learner's pass; a learner nobody used has none.
    def look(page) -> dict[tuple[str, str], int]:
        seen = {}
        for learner, own in zip(LEARNERS, doors, strict=True):
            for door, url in doors.items():
                if door != own:
                    seen[(learner, door)] = completed_on_home(page, url, learner)
        seen[("nobody", "nginx")] = completed_on_home(page, cluster.nginx_url, "nobody")
        return seen

    seen = browser_thread.run(look, name="look")
    expected = {key: 1 for key in seen} | {("nobody", "nginx"): 0}
    assert seen == expected


def test_a_browser_stays_on_one_replica_through_nginx(cluster: Cluster,
                                                      browser_thread: BrowserThread) -> None:
    def visit(page) -> str:
        completed_on_home(page, cluster.nginx_url, "affinity check")
        page.reload()  # a second page load and WebSocket, then a third below: same browser
        completed_on_home(page, cluster.nginx_url, "affinity check")
        cookies = {c["name"]: c["value"] for c in page.context.cookies()}
        assert "moelab_route" in cookies, "nginx did not hand out its route cookie"
        return cookies["moelab_route"]

    route = browser_thread.run(visit, name="affinity")
    # nginx logs a WebSocket when it closes: wait until the sockets of the reloaded pages are there.
    deadline = time.monotonic() + 20
    while True:
        log = (cluster.state / "nginx" / "access.log").read_text()
        mine = [line for line in log.splitlines() if f"route={route} " in line]
        streams = [line for line in mine if "/_stcore/stream" in line]
        if len(streams) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    upstreams = {re.search(r"upstream=(\S+)", line).group(1) for line in mine}
    assert len(upstreams) == 1, f"one browser was served by {upstreams}"
    assert len(streams) >= 2 and all('" 101 ' in line for line in streams), (
        f"expected a proxied WebSocket upgrade (101) per page load, got:\n{streams}")


def test_new_browsers_spread_over_replicas(cluster: Cluster) -> None:
    served = defaultdict(int)
    for _ in range(24):
        _, headers, _ = http_get(f"{cluster.nginx_url}/_stcore/health")
        assert "moelab_route=" in headers.get("set-cookie", ""), headers
        served[headers["x-moe-lab-upstream"]] += 1
    assert set(served) == {url.removeprefix("http://") for url in cluster.replica_urls}, served
    # With the cookie sent back, the same replica answers every time.
    cookie = f"moelab_route=fixed-{time.time_ns()}"
    answers = {http_get(f"{cluster.nginx_url}/_stcore/health", cookie)[1]["x-moe-lab-upstream"]
               for _ in range(8)}
    assert len(answers) == 1


def test_a_killed_replica_is_routed_around_and_restarts(cluster: Cluster) -> None:
    victim = cluster.replica_urls[0].removeprefix("http://")
    cookie = next(c for c in (f"moelab_route=k{i}" for i in range(200))
                  if http_get(f"{cluster.nginx_url}/_stcore/health", c)[1]["x-moe-lab-upstream"] == victim)

    cluster.kill_replica(0)
    assert cluster.sh("status", check=False).returncode == 3  # status notices the dead replica
    status, headers, body = http_get(f"{cluster.nginx_url}/_stcore/health", cookie)
    assert (status, body) == (200, b"ok")
    assert headers["x-moe-lab-upstream"].split(", ")[-1] == cluster.replica_urls[1].removeprefix("http://")

    cluster.sh("start", "app")  # brings back only what is down
    assert cluster.sh("status").returncode == 0
    assert http_get(f"{cluster.replica_urls[0]}/_stcore/health")[2] == b"ok"
    # Once nginx retries it (fail_timeout=5s), the learners hashed to it go back to it.
    deadline = time.monotonic() + 30
    while http_get(f"{cluster.nginx_url}/_stcore/health", cookie)[1]["x-moe-lab-upstream"] != victim:
        assert time.monotonic() < deadline, "nginx never sent the route back to the restarted replica"
        time.sleep(1)
