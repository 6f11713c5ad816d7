"""Drive `deploy/cluster.sh` from tests: a real PostgreSQL, Streamlit replicas and nginx on loopback.

`Cluster` is a thin handle on one cluster folder: it picks free ports, runs the script's commands,
reads what the script recorded, and answers database questions with `psql` (an independent view:
not through the app's ProgressStore). `clean()` in a finalizer stops every process it started.

Without PostgreSQL or nginx installed the tests skip with the reason, except under CI, where a
missing package is a failure (`.ci/run` installs them).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.ci import missing_dependency
from tests.e2e.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "cluster.sh"
START_TIMEOUT_S = 240


def require_services(nginx: bool = True) -> None:
    missing = []
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb") and not os.environ.get("MOE_LAB_PG_BINDIR"):
        missing.append("postgresql (initdb)")
    if nginx and shutil.which("nginx") is None:
        missing.append("nginx")
    if missing:
        message = f"needs Debian packages: {', '.join(missing)} (apt-get install postgresql nginx)"
        missing_dependency(message)


@dataclass
class Cluster:
    state: Path
    replicas: int = 2
    app_ports: list[int] = field(default_factory=list)
    nginx_port: int = 0
    pg_port: int = 0

    def __post_init__(self) -> None:
        self.app_ports = self.app_ports or [free_port() for _ in range(self.replicas)]
        self.nginx_port = self.nginx_port or free_port()
        self.pg_port = self.pg_port or free_port()

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "MOE_LAB_CLUSTER_DIR": str(self.state), "MOE_LAB_PYTHON": sys.executable,
                "MOE_LAB_APP_PORTS": " ".join(map(str, self.app_ports)),
                "MOE_LAB_NGINX_PORT": str(self.nginx_port), "MOE_LAB_PG_PORT": str(self.pg_port)}

    def sh(self, *args: str, check: bool = True, timeout: float = START_TIMEOUT_S,
           ) -> subprocess.CompletedProcess:
        """Run `deploy/cluster.sh ARGS`; on failure the assertion shows its output."""
        done = subprocess.run(["bash", str(SCRIPT), *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        if check:
            assert done.returncode == 0, (
                f"cluster.sh {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
                f"\n{self.logs()}")
        return done

    # --- addresses -------------------------------------------------------------------------

    @property
    def replica_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.app_ports]

    @property
    def nginx_url(self) -> str:
        return f"http://127.0.0.1:{self.nginx_port}"

    @property
    def database_url(self) -> str:
        return self.sh("url").stdout.strip()

    def replica_pid(self, index: int) -> int:
        return int((self.state / f"app-{self.app_ports[index]}.pid").read_text().split()[0])

    def kill_replica(self, index: int) -> None:
        """SIGKILL replica `index` and its process group: no shutdown code runs."""
        os.killpg(self.replica_pid(index), signal.SIGKILL)

    def logs(self) -> str:
        parts = []
        for path in [*sorted(self.state.glob("app-*.log")), self.state / "nginx" / "error.log"]:
            if path.exists():
                parts.append(f"--- {path.name} (tail)\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    # --- the database, seen directly -------------------------------------------------------

    def psql(self, sql: str) -> list[list[str]]:
        """Rows of `sql` as run by psql over TCP with the replicas' own credentials."""
        url = self.database_url.replace("postgresql+psycopg://", "postgresql://")
        psql = ([*sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))] or ["psql"])[-1]
        done = subprocess.run([psql, url, "-X", "-q", "-A", "-t", "-F", "\t", "-c", sql],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return [line.split("\t") for line in done.stdout.splitlines() if line]

    def passed_lessons(self) -> dict[str, list[int]]:
        rows = self.psql("select l.display_name, q.lesson from quiz_results q join learners l "
                         "on l.id = q.learner where q.passed order by l.display_name, q.lesson")
        result: dict[str, list[int]] = {}
        for learner, lesson in rows:
            result.setdefault(learner, []).append(int(lesson))
        return result


def http_get(url: str, cookie: str | None = None, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        return reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.read()
