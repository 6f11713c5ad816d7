"""`streamlit run`, plus a log of how long the server spends on every script run (benchmarks only).

Why: the issue's latency target is server-side, "from a widget change to the re-rendered section".
In a real server a widget inside an `st.fragment` reruns only that fragment; `AppTest` cannot
do that (it always reruns the whole page), so it overstates the wait. This launcher runs the real
server and appends one JSON line per script run to the file named by `MOE_LAB_RUN_LOG`:

    received   time.monotonic() when the server got the browser's rerun request (the widget change);
               the run's start if the run was not asked for by the browser (a rerun of its own)
    started    when the script thread began the run
    ended      when the run finished: every element of the re-rendered section is queued to the
               browser (serialised protobuf), including any rerun the run itself asked for
    fragments  the fragment ids rerun (empty: the whole page ran)

Nothing in the app knows about it: it wraps two Streamlit methods in this process only.

    MOE_LAB_RUN_LOG=/tmp/runs.jsonl python bench/server_runs.py run app.py --server.port 8600

With `MOE_LAB_PROFILE=/tmp/runs.prof` as well, every fragment rerun (not whole-page runs) is also
run under cProfile and the summed stats are rewritten to that file after each one
(`python -m pstats /tmp/runs.prof`): where a widget's rerun spends its time.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path


def install(log_path: Path, profile_path: Path | None = None) -> None:
    """Wrap AppSession.handle_backmsg (stamp rerun requests) and ScriptRunner._run_script (log runs)."""
    from streamlit.runtime.app_session import AppSession
    from streamlit.runtime.scriptrunner.script_runner import ScriptRunner

    lock = threading.Lock()
    last_request: dict[str, float] = {}  # session id -> when its latest rerun request arrived
    handle_backmsg, run_script = AppSession.handle_backmsg, ScriptRunner._run_script

    def timed_backmsg(self, msg) -> None:
        if msg.WhichOneof("type") == "rerun_script":
            last_request[self.id] = time.monotonic()
        handle_backmsg(self, msg)

    profile_stats: list = []  # one pstats.Stats, summed over the profiled runs

    def profiled(self, rerun_data) -> None:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        try:
            profiler.runcall(run_script, self, rerun_data)
        finally:
            with lock:
                if profile_stats:
                    profile_stats[0].add(profiler)
                else:
                    profile_stats.append(pstats.Stats(profiler))
                profile_stats[0].dump_stats(profile_path)

    def timed_run(self, rerun_data) -> None:
        received, started = last_request.pop(self._session_id, None), time.monotonic()
        try:
            if profile_path is not None and rerun_data.fragment_id_queue:
                profiled(self, rerun_data)
            else:
                run_script(self, rerun_data)
        finally:
            line = {"received": started if received is None else received, "started": started,
                    "ended": time.monotonic(), "fragments": list(rerun_data.fragment_id_queue or []),
                    "session": self._session_id}
            with lock, log_path.open("a", encoding="utf-8") as log:
                log.write(json.dumps(line) + "\n")

    AppSession.handle_backmsg = timed_backmsg
    ScriptRunner._run_script = timed_run


def read_runs(log_path: Path, since: int = 0) -> list[dict]:
    """The logged runs from line `since` on (the file may not exist yet)."""
    if not log_path.exists():
        return []
    lines = log_path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[since:] if line.strip()]


def main() -> None:
    profile = os.environ.get("MOE_LAB_PROFILE")
    install(Path(os.environ["MOE_LAB_RUN_LOG"]), Path(profile) if profile else None)
    from streamlit.web import cli

    sys.argv = ["streamlit", *sys.argv[1:]]
    cli.main()


if __name__ == "__main__":
    main()
