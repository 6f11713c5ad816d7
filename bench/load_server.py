"""Helpers of bench/load_test.py: start a loopback MoE Lab server, and sample a server's memory.

Peak memory is read from Linux's /proc, sampled a few times a second over the whole process tree,
two ways: the summed RSS (VmRSS, or the kernel's high-water mark VmHWM of each process, whichever
is larger) — an upper bound that counts a page shared by a parent and its forked children once
per process — and the summed PSS (/proc/PID/smaps_rollup: each shared page divided among the
processes sharing it), which is the memory the tree really occupies. Lesson 5 forks its ranks
from one subprocess, so the two differ exactly when they run. For a
server given by URL the process is found from its listening port (/proc/net/tcp -> socket inode ->
the process holding it), so this works for a server the script did not start, on the same machine.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# Chromium's new headless mode prewarms the omnibox (address bar) popup of every window, a WebUI
# renderer per browser context: 0.5 s of CPU each at start and 2-3 % of a core each while it
# lives. No learner's page needs it; on one machine with eight contexts it is CPU the benchmark
# would otherwise charge to MoE Lab.
NO_OMNIBOX_POPUP = "WebUIOmniboxPopup,WebUIOmniboxAimPopup"


def niced_browser(chromium: str, workdir: Path) -> str:
    """A launcher that runs `chromium` at the lowest CPU priority (nice 19), for executable_path.

    On this machine the browsers share two cores with the server; a learner's browser is on
    another machine, so here it must not take the server's CPU in the middle of a rerun. The
    browsers still get every cycle the server leaves, and their time is still counted in what
    the benchmarks report as seen in the browser.

    Run as root, Chromium raises its own priority (browser and GPU processes to nice -8, each
    renderer back to 0), which undid a plain `nice`; dropping CAP_SYS_NICE first (setpriv, from
    util-linux) keeps every Chromium process at 19. The launcher also adds NO_OMNIBOX_POPUP to
    the --disable-features list Playwright passes (Chromium reads only the last such switch, so
    a second one would drop Playwright's)."""
    path = workdir / "chromium-niced"
    keep_niced = "setpriv --bounding-set=-sys_nice --inh-caps=-sys_nice " if shutil.which("setpriv") else ""
    path.write_text(f"""#!/bin/sh
seen=
for arg; do
  shift
  case "$arg" in --disable-features=*) arg="$arg,{NO_OMNIBOX_POPUP}"; seen=1;; esac
  set -- "$@" "$arg"
done
[ -n "$seen" ] || set -- "$@" --disable-features={NO_OMNIBOX_POPUP}
exec {keep_niced}nice -n 19 {chromium} "$@"
""", encoding="utf-8")
    path.chmod(0o755)
    return str(path)


@dataclass
class Server:
    url: str
    process: subprocess.Popen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(repo: Path, db_url: str, log: Path, timeout_s: float = 90.0,
                 run_log: Path | None = None) -> Server:
    """A loopback server; with `run_log`, through bench/server_runs.py, which logs every script
    run's server-side time there."""
    port = free_port()
    env = {**os.environ, "MOE_LAB_DATABASE_URL": db_url}
    launcher = ["-m", "streamlit"]
    if run_log is not None:
        env["MOE_LAB_RUN_LOG"] = str(run_log)
        launcher = [str(repo / "bench" / "server_runs.py")]
    cmd = [sys.executable, *launcher, "run", "app.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true",
           "--browser.gatherUsageStats", "false"]
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}); see {log}")
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=1) as reply:
                if reply.read().strip() == b"ok":
                    return server
        except OSError:
            time.sleep(0.2)
    stop_server(server)
    raise RuntimeError(f"the server did not answer in {timeout_s:.0f} s; see {log}")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, 15)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, 9)
            server.process.wait(timeout=5)


# --- memory ---------------------------------------------------------------------------------------


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += _children(current)
    return tree


def pid_listening_on(port: int) -> int | None:
    """The process that listens on TCP `port` (IPv4 or IPv6), or None."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "0A":  # 0A: LISTEN
                inodes.add(cols[9])
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd).removeprefix("socket:[").removesuffix("]") in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of `pid`, its reaped children and its live descendants."""
    total = 0.0
    for i, p in enumerate(_tree(pid)):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[11:13] utime, stime; fields[13:15] cutime, cstime (children already waited for)
        ticks = sum(int(v) for v in fields[11:15 if i == 0 else 13])
        total += ticks / os.sysconf("SC_CLK_TCK")
    return total


def machine_cpu_ticks() -> tuple[int, int, int]:
    """(busy, niced, total) clock ticks of the whole machine since boot, from /proc/stat. The
    benchmarks' browsers run at nice 19, so `niced` is their share (and that of anything else
    niced), `busy - niced` the server's and everyone else's."""
    user, nice, system, idle, iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    total = user + nice + system + idle + iowait + irq + softirq + steal
    return total - idle - iowait, nice, total


class RssSampler:
    """Samples the summed RSS of a process tree on a thread; `stop()` returns the peak in MB,
    `peak_pss_mb` the peak summed PSS. `cpu_s` is the CPU time the tree used between `start()`
    and `stop()`."""

    def __init__(self, pid: int | None, every_s: float = 0.25) -> None:
        self.pid, self.every_s = pid, every_s
        self.peak_kb = 0
        self.peak_pss_kb = 0
        self.cpu_s: float | None = None
        self._cpu0 = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @classmethod
    def for_url(cls, url: str, pid: int | None = None) -> RssSampler:
        parsed = urllib.parse.urlparse(url)
        if pid is None and parsed.hostname in ("127.0.0.1", "localhost", "::1"):
            pid = pid_listening_on(parsed.port or 80)
        return cls(pid)

    def start(self) -> None:
        if self.pid is not None:
            self._cpu0 = cpu_seconds(self.pid)
            self._thread.start()

    def mark(self) -> None:
        """Count CPU time from now on (after a warm-up, say)."""
        if self.pid is not None:
            self._cpu0 = cpu_seconds(self.pid)

    def _run(self) -> None:
        while not self._done.is_set():
            tree = _tree(self.pid)
            now = sum(_status_kb(p, "VmRSS") for p in tree)
            self.peak_kb = max(self.peak_kb, now, *(_status_kb(p, "VmHWM") for p in tree))
            self.peak_pss_kb = max(self.peak_pss_kb, sum(_pss_kb(p) for p in tree))
            self._done.wait(self.every_s)

    @property
    def peak_pss_mb(self) -> float | None:
        return None if self.pid is None else self.peak_pss_kb / 1024

    def stop(self) -> float | None:
        if self.pid is None:
            return None
        self._done.set()
        self._thread.join(timeout=5)
        self.cpu_s = cpu_seconds(self.pid) - self._cpu0
        return self.peak_kb / 1024
