"""ProgressStore against real databases: SQLite files in tmp_path and a real PostgreSQL server.

Faults are produced for real (a lock held by another connection, a read-only open, a file of
garbage, a stopped server), never by mocking the store. Expected values are written out by hand.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lessons.course import progress
from lessons.course.identity import normalize_learner_name
from lessons.course.progress import SCHEMA_VERSION, ProgressStore, ProgressUnavailable
from lessons.course.progress import engines as progress_engines
from tests.ci import missing_dependency

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _fresh_engines() -> Iterator[None]:
    yield
    progress.dispose()  # no pooled connection outlives its test (or its tmp_path)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "progress.db"


@pytest.fixture
def store(db_path: Path) -> ProgressStore:
    return ProgressStore(f"sqlite:///{db_path}")


def _raw(db_path: Path, sql: str, *params: object) -> list[tuple]:
    """Read the file with the plain sqlite3 module: an independent view of what was stored."""
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql, params).fetchall()


# --- behaviour --------------------------------------------------------------------------------


def test_best_score_kept_and_attempts_counted(store: ProgressStore, db_path: Path) -> None:
    assert store.record_quiz("ann", 2, 0.4).best_score == 0.4
    assert store.record_quiz("ann", 2, 0.6).best_score == 0.6
    result = store.record_quiz("ann", 2, 0.2)
    assert (result.lesson, result.best_score, result.attempts, result.passed) == (2, 0.6, 3, False)
    assert _raw(db_path, "select best_score, attempts from quiz_results") == [(0.6, 3)]
    assert result.first_attempt_at <= result.last_attempt_at


def test_pass_completes_and_a_worse_retry_keeps_it(store: ProgressStore) -> None:
    assert not store.record_quiz("bo", 1, 0.79).completed
    assert store.completed_count("bo") == 0
    passed = store.record_quiz("bo", 1, 0.8)  # exactly 80% passes
    assert passed.completed and passed.passed_at is not None
    retry = store.record_quiz("bo", 1, 0.1)
    assert (retry.completed, retry.best_score, retry.attempts) == (True, 0.8, 3)
    assert retry.passed_at == passed.passed_at  # the first pass is remembered, not the latest
    store.record_quiz("bo", 3, 1.0)
    assert store.completed_count("bo") == 2
    assert sorted(store.progress("bo")) == [1, 3]  # lessons never attempted are absent


def test_survives_a_new_store_and_a_new_process(store: ProgressStore, db_path: Path) -> None:
    store.record_quiz("cy", 4, 0.9)
    store.mark_visited("cy", 4)
    progress.dispose()  # drop every pooled connection: nothing may live only in memory
    again = ProgressStore(f"sqlite:///{db_path}")
    assert again.progress("cy")[4].best_score == 0.9
    code = (
        "from lessons.course.progress import ProgressStore; import sys; "
        "s = ProgressStore(sys.argv[1]); p = s.progress('cy')[4]; "
        "print(p.best_score, p.attempts, s.last_visited('cy'))"
    )
    out = _python(code, f"sqlite:///{db_path}")
    assert out.split() == ["0.9", "1", "4"]


def test_last_visited(store: ProgressStore) -> None:
    assert store.last_visited("di") is None
    store.mark_visited("di", 3)
    store.mark_visited("di", 1)
    assert store.last_visited("di") == 1
    store.mark_visited("di", 3)  # revisiting moves it back to the front
    assert store.last_visited("di") == 3


def test_reset_forgets_only_that_learner(store: ProgressStore) -> None:
    for who in ("eve", "fay"):
        store.record_quiz(who, 5, 1.0)
        store.mark_visited(who, 5)
    store.reset("eve")
    assert store.progress("eve") == {} and store.last_visited("eve") is None
    assert store.completed_count("eve") == 0
    assert store.progress("fay")[5].completed and store.last_visited("fay") == 5


@pytest.mark.parametrize("lesson", [0, 6, -1, True, 1.0, "1", None])
def test_lesson_out_of_range_is_rejected(store: ProgressStore, lesson: object) -> None:
    with pytest.raises(ValueError, match="lesson"):
        store.record_quiz("gil", lesson, 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lesson"):
        store.mark_visited("gil", lesson)  # type: ignore[arg-type]


@pytest.mark.parametrize("score", [-0.1, 1.01, float("nan"), float("inf"), "0.5", None])
def test_bad_score_is_rejected(store: ProgressStore, score: object) -> None:
    with pytest.raises(ValueError, match="score"):
        store.record_quiz("gil", 1, score)  # type: ignore[arg-type]


@pytest.mark.parametrize("learner", [" ann", "", "Zoe\u0308", "x" * 65, "a\x00b", None])
def test_non_canonical_learner_is_rejected(store: ProgressStore, learner: object) -> None:
    with pytest.raises(ValueError, match="learner"):
        store.record_quiz(learner, 1, 0.5)  # type: ignore[arg-type]


NAMES = [
    "O'Brien",
    'say "hi"',
    "'; DROP TABLE quiz_results; --",
    "Robert'); DROP TABLE lesson_visits;--",
    "<script>alert('x')</script>",
    "\U0001f469\u200d\U0001f4bb Zo\u00eb",
    "\u5f20\u4f1f",
    "z" * 64,
    "%_*?\\",  # LIKE wildcards and a backslash
]


@pytest.mark.parametrize("name", NAMES)
def test_learner_names_round_trip(store: ProgressStore, db_path: Path, name: str) -> None:
    assert normalize_learner_name(name).name == name  # the names the UI would pass
    store.record_quiz(name, 1, 0.9)
    store.record_quiz("other", 1, 0.3)
    store.mark_visited(name, 2)
    assert store.progress(name)[1].best_score == 0.9
    assert store.last_visited(name) == 2
    assert _raw(db_path, "select learner from quiz_results order by learner") == sorted([(name,), ("other",)])


# --- predictions, display names, old name keys (schema version 2) ------------------------------


def test_predictions_are_kept_per_learner_and_lesson_and_the_first_wins(store: ProgressStore) -> None:
    assert store.predictions("ann", 4) == {}
    assert store.record_prediction("ann", 4, "collapse", "one expert") == "one expert"
    assert store.record_prediction("ann", 4, "collapse", "balanced") == "one expert"  # locked in
    store.record_prediction("ann", 4, "alpha", "costs loss")
    store.record_prediction("ann", 2, "collapse", "balanced")
    store.record_prediction("bo", 4, "collapse", "balanced")
    assert store.predictions("ann", 4) == {"collapse": "one expert", "alpha": "costs loss"}
    assert store.predictions("ann", 2) == {"collapse": "balanced"}
    store.reset("ann")
    assert store.predictions("ann", 4) == {} and store.predictions("bo", 4) == {"collapse": "balanced"}


@pytest.mark.parametrize(("key", "answer"), [("", "x"), ("k" * 65, "x"), ("k", ""), ("k", "a" * 501),
                                             (None, "x"), ("k", 3)])
def test_bad_prediction_is_rejected(store: ProgressStore, key: object, answer: object) -> None:
    with pytest.raises(ValueError, match=r"key|answer"):
        store.record_prediction("ann", 1, key, answer)  # type: ignore[arg-type]


def test_display_names(store: ProgressStore) -> None:
    assert store.display_name("browser:abc") is None
    store.set_display_name("browser:abc", "Ann")
    store.set_display_name("browser:abc", "Ann Lee")
    store.set_display_name("browser:def", "Ann Lee")  # two learners may show the same name
    assert store.display_name("browser:abc") == "Ann Lee" == store.display_name("browser:def")
    with pytest.raises(ValueError, match="canonical"):
        store.set_display_name("browser:abc", " Ann ")
    store.reset("browser:abc")
    assert store.display_name("browser:abc") is None and store.display_name("browser:def") == "Ann Lee"


def test_claiming_an_old_name_moves_and_merges_everything_once(store: ProgressStore, db_path: Path) -> None:
    store.record_quiz("ann", 1, 0.9)  # stored under the name, as MoE Lab did before private ids
    store.record_quiz("ann", 2, 0.5)
    store.record_quiz("ann", 2, 0.6)
    store.mark_visited("ann", 2)
    store.record_prediction("ann", 4, "collapse", "one expert")
    store.record_quiz("other", 1, 0.2)
    new = "browser:xyz"
    store.record_quiz(new, 2, 0.7)  # the browser already has work of its own: merged, not lost
    store.record_prediction(new, 4, "collapse", "balanced")
    assert store.claim_name("ann", new) == 4  # 2 quiz rows, 1 visit, 1 prediction
    mine = store.progress(new)
    assert (mine[1].best_score, mine[1].attempts, mine[1].passed) == (0.9, 1, True)
    assert (mine[2].best_score, mine[2].attempts, mine[2].passed) == (0.7, 3, False)
    assert store.last_visited(new) == 2
    assert store.predictions(new, 4) == {"collapse": "balanced"}  # the browser's own came first
    for table in ("quiz_results", "lesson_visits", "predictions"):
        assert _raw(db_path, f"select count(*) from {table} where learner = 'ann'") == [(0,)]
    assert store.claim_name("ann", "browser:someone-else") == 0  # the name alone opens nothing now
    assert store.progress("other")[1].best_score == 0.2


# v1 as MoE Lab created it (the DDL SQLAlchemy emitted for the version-1 tables), per dialect.
V1_DDL = {
    "sqlite": ("DATETIME", "FLOAT"),
    "postgresql": ("TIMESTAMP WITH TIME ZONE", "FLOAT"),
}


def _v1_statements(dialect: str) -> list[str]:
    stamp, number = V1_DDL[dialect]
    return [
        "CREATE TABLE schema_version (version INTEGER NOT NULL)",
        f"CREATE TABLE quiz_results (learner VARCHAR(64) NOT NULL, lesson INTEGER NOT NULL, "
        f"best_score {number} NOT NULL, attempts INTEGER NOT NULL, passed BOOLEAN NOT NULL, "
        f"first_attempt_at {stamp} NOT NULL, last_attempt_at {stamp} NOT NULL, passed_at {stamp}, "
        "PRIMARY KEY (learner, lesson))",
        f"CREATE TABLE lesson_visits (learner VARCHAR(64) NOT NULL, lesson INTEGER NOT NULL, "
        f"last_visited_at {stamp} NOT NULL, PRIMARY KEY (learner, lesson))",
        "INSERT INTO schema_version VALUES (1)",
        "INSERT INTO quiz_results VALUES ('ann', 1, 0.9, 2, true, '2026-11-30 10:00:00', "
        "'2026-12-01 09:00:00', '2026-12-01 09:00:00')",
        "INSERT INTO quiz_results VALUES ('bo', 3, 0.4, 1, false, '2026-12-02 08:00:00', "
        "'2026-12-02 08:00:00', NULL)",
        "INSERT INTO lesson_visits VALUES ('ann', 2, '2026-12-01 09:05:00')",
    ]


def _check_migrated(store: ProgressStore) -> None:
    ann, bo = store.progress("ann")[1], store.progress("bo")[3]
    assert (ann.best_score, ann.attempts, ann.passed) == (0.9, 2, True)
    assert ann.first_attempt_at.isoformat() == "2026-11-30T10:00:00+00:00"
    assert (bo.best_score, bo.attempts, bo.passed, bo.passed_at) == (0.4, 1, False, None)
    assert store.last_visited("ann") == 2
    store.record_prediction("ann", 4, "collapse", "one expert")  # the new tables are there
    store.set_display_name("browser:new", "Ann")
    assert store.predictions("ann", 4) == {"collapse": "one expert"}


def test_a_version_1_sqlite_database_is_migrated_losing_nothing(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        for statement in _v1_statements("sqlite"):
            conn.execute(statement)
    store = ProgressStore(f"sqlite:///{db_path}")
    _check_migrated(store)
    assert _raw(db_path, "select version from schema_version") == [(SCHEMA_VERSION,)] == [(2,)]
    progress.dispose()
    _check_migrated(ProgressStore(f"sqlite:///{db_path}"))  # a second open migrates nothing again


def test_a_read_only_version_1_database_is_refused_unchanged(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        for statement in _v1_statements("sqlite"):
            conn.execute(statement)
    before = db_path.read_bytes()
    read_only = ProgressStore(f"sqlite:///file:{db_path}?mode=ro&uri=true")
    with pytest.raises(ProgressUnavailable, match="read-only"):
        read_only.progress("ann")
    assert db_path.read_bytes() == before


# --- concurrency ------------------------------------------------------------------------------


def test_concurrent_threads_lose_nothing(store: ProgressStore) -> None:
    threads, per_thread = 8, 15
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def worker(index: int) -> None:
        start.wait()
        try:
            for i in range(per_thread):
                store.record_quiz("hal", 3, (index * per_thread + i) / (threads * per_thread))
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert errors == []
    result = store.progress("hal")[3]
    assert result.attempts == threads * per_thread
    assert result.best_score == (threads * per_thread - 1) / (threads * per_thread)


WRITER = """
import sys, time
from pathlib import Path
from lessons.course.progress import ProgressStore
url, go, scores = sys.argv[1], Path(sys.argv[2]), [float(s) for s in sys.argv[3].split(",")]
store = ProgressStore(url)
store.check()
while not go.exists():
    time.sleep(0.005)
for score in scores:
    store.record_quiz("ivy", 2, score)
"""


def test_two_processes_lose_nothing(db_path: Path, tmp_path: Path) -> None:
    # Separate interpreters (subprocess rather than multiprocessing: nothing is inherited or
    # pickled), released together so their writes interleave.
    url, go = f"sqlite:///{db_path}", tmp_path / "go"  # no tables yet: both processes create them
    # Kept short: SQLite's busy handler is not fair between processes, so one writer may wait for
    # the other's whole run, and that must stay well inside the 2 s busy timeout on a slow disk.
    scores = {0: [i / 100 for i in range(0, 50, 2)], 1: [i / 100 for i in range(1, 50, 2)] + [0.97]}
    procs = [_spawn(WRITER, url, str(go), ",".join(map(str, s))) for s in scores.values()]
    time.sleep(0.5)
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    result = ProgressStore(url).progress("ivy")[2]
    assert result.attempts == 51 and result.best_score == 0.97 and result.passed


# --- faults -----------------------------------------------------------------------------------


def test_locked_database_fails_within_seconds(store: ProgressStore, db_path: Path) -> None:
    store.record_quiz("jo", 1, 0.5)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another program writing for a long time
    try:
        started = time.monotonic()
        with pytest.raises(ProgressUnavailable, match="busy") as caught:
            store.record_quiz("jo", 1, 0.9)
        waited = time.monotonic() - started
        assert 1.0 < waited < 6.0  # it waited the busy timeout (2 s), then gave up
        assert str(db_path) in caught.value.user_message
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    after = store.record_quiz("jo", 1, 0.7)  # the lock is gone: saving works again
    assert (after.attempts, after.best_score) == (2, 0.7)


def test_read_only_database(store: ProgressStore, db_path: Path) -> None:
    # Tests run as root, and root writes through chmod 0444. So the file is opened the way a
    # read-only file or mount behaves for anyone: SQLite's `mode=ro`, which refuses every write
    # with the same error ("attempt to write a readonly database").
    store.record_quiz("kim", 1, 0.5)
    read_only = ProgressStore(f"sqlite:///file:{db_path}?mode=ro&uri=true")
    with pytest.raises(ProgressUnavailable) as caught:
        read_only.record_quiz("kim", 1, 0.9)
    message = caught.value.user_message
    assert message.startswith("Progress can't be saved right now: the database file is read-only (")
    assert str(db_path) in message and "Lessons still work" in message
    assert read_only.progress("kim")[1].best_score == 0.5  # reading still works
    assert _raw(db_path, "select best_score, attempts from quiz_results") == [(0.5, 1)]


def _sqlite_with_garbage(path: Path) -> None:
    """A real SQLite header followed by noise: what a half-copied or damaged file looks like."""
    ProgressStore(f"sqlite:///{path}").record_quiz("x", 1, 0.5)
    progress.dispose()
    data = bytearray(path.read_bytes())
    data[100:] = bytes((i * 37 + 11) % 256 for i in range(len(data) - 100))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("text", "the database file is not a SQLite database"),  # caught before SQLite opens it
        ("garbage-after-header", "the database file is damaged or not a SQLite database"),
    ],
)
def test_corrupt_file_is_refused_and_left_unchanged(db_path: Path, kind: str, reason: str) -> None:
    if kind == "text":
        db_path.write_text("my notes, not a database\n" * 50)
    else:
        _sqlite_with_garbage(db_path)
    before, listing = db_path.read_bytes(), sorted(os.listdir(db_path.parent))
    store = ProgressStore(f"sqlite:///{db_path}")
    for call in (store.check, lambda: store.record_quiz("x", 1, 0.9), lambda: store.progress("x")):
        with pytest.raises(ProgressUnavailable) as caught:
            call()
        assert caught.value.user_message.startswith(
            f"Progress can't be saved right now: {reason} ({db_path})"
        )
    assert db_path.read_bytes() == before
    assert sorted(os.listdir(db_path.parent)) == listing  # no journal or new file left beside it


def test_newer_schema_is_refused(store: ProgressStore, db_path: Path) -> None:
    store.record_quiz("lee", 1, 0.5)
    assert _raw(db_path, "select version from schema_version") == [(SCHEMA_VERSION,)]
    with sqlite3.connect(db_path) as conn:
        conn.execute("update schema_version set version = ?", (SCHEMA_VERSION + 1,))
    progress.dispose()
    newer = ProgressStore(f"sqlite:///{db_path}")
    with pytest.raises(ProgressUnavailable, match="newer MoE Lab"):
        newer.check()
    with pytest.raises(ProgressUnavailable, match="newer MoE Lab"):
        newer.record_quiz("lee", 1, 0.9)
    assert _raw(db_path, "select best_score, attempts from quiz_results") == [(0.5, 1)]


def test_default_location_and_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MOE_LAB_DATABASE_URL", raising=False)
    ProgressStore().record_quiz("mo", 1, 0.5)  # creates ~/.moe_lab/ on the way
    assert _raw(tmp_path / "home/.moe_lab/progress.db", "select learner from quiz_results") == [("mo",)]
    monkeypatch.setenv("MOE_LAB_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    ProgressStore().record_quiz("ned", 1, 0.5)
    assert _raw(tmp_path / "env.db", "select learner from quiz_results") == [("ned",)]


@pytest.mark.parametrize("make", ["folder-is-a-file", "path-is-a-folder"])
def test_unusable_path(tmp_path: Path, make: str) -> None:
    (tmp_path / "plain").write_text("x")
    url = (
        f"sqlite:///{tmp_path / 'plain' / 'progress.db'}"
        if make == "folder-is-a-file"
        else f"sqlite:///{tmp_path}"
    )
    with pytest.raises(ProgressUnavailable, match="Lessons still work"):
        ProgressStore(url).check()


def test_unreachable_server_fails_fast_without_leaking_password() -> None:
    url = f"postgresql+psycopg://moe:s3cret-pw@127.0.0.1:{_free_port()}/moelab"
    started = time.monotonic()
    with pytest.raises(ProgressUnavailable, match="isn't reachable") as caught:
        ProgressStore(url).record_quiz("ola", 1, 0.5)
    assert time.monotonic() - started < 10
    assert "s3cret" not in caught.value.user_message and "Traceback" not in caught.value.user_message
    assert "SELECT" not in caught.value.user_message.upper()


@pytest.mark.parametrize("url", ["not a url", "mysql://u@localhost/x", "postgresql+nosuchdriver://u@h/x"])
def test_bad_url_is_a_progress_fault(url: str) -> None:
    with pytest.raises(ProgressUnavailable, match="Lessons still work"):
        ProgressStore(url)


# --- PostgreSQL -------------------------------------------------------------------------------
# MOE_LAB_TEST_POSTGRES_URL points at a server to use; otherwise the tests start a throwaway one
# with the initdb/pg_ctl of an installed PostgreSQL (Debian: apt-get install postgresql).


def _no_postgres(reason: str) -> None:
    missing_dependency(f"PostgreSQL tests cannot run: {reason}")


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary folder on a free loopback port, trust auth, no fsync."""

    def __init__(self, bindir: Path) -> None:
        self.bindir, self.port = bindir, _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="moe_lab_pg_"))
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(self.root, "postgres", "postgres")
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._pg(
            "initdb",
            "-D",
            str(self.root / "data"),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def _pg(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*self.as_postgres, str(self.bindir / tool), *args], capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg(
            "pg_ctl",
            "-D",
            str(self.root / "data"),
            "-l",
            str(self.root / "log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        self._pg("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        subprocess.run(
            [
                *self.as_postgres,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.root / "data"),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def _postgres_bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


@pytest.fixture(scope="module")
def pg_server() -> Iterator[ThrowawayPostgres]:
    bindir = _postgres_bindir()
    if bindir is None:
        _no_postgres("no initdb found (install PostgreSQL, or set MOE_LAB_TEST_POSTGRES_URL)")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        _no_postgres("running as root without runuser, so initdb cannot run as user postgres")
    server = ThrowawayPostgres(bindir)
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    given = os.environ.get("MOE_LAB_TEST_POSTGRES_URL")
    return given or request.getfixturevalue("pg_server").url


def test_postgres_round_trip(pg_url: str) -> None:
    store = ProgressStore(pg_url)
    who, other = _unique("pat"), _unique("\U0001f469\u200d\U0001f4bb '; DROP TABLE quiz_results; --")
    try:
        store.record_quiz(who, 2, 0.9)
        store.record_quiz(who, 2, 0.3)
        store.record_quiz(other, 2, 0.5)
        store.mark_visited(who, 4)
        progress.dispose()
        again = ProgressStore(pg_url)
        result = again.progress(who)[2]
        assert (result.best_score, result.attempts, result.completed) == (0.9, 2, True)
        assert result.last_attempt_at.tzinfo is not None
        assert again.last_visited(who) == 4 and again.completed_count(who) == 1
        assert again.progress(other)[2].best_score == 0.5
        again.reset(who)
        assert again.progress(who) == {} and again.progress(other)[2].attempts == 1
    finally:
        ProgressStore(pg_url).reset(who)
        ProgressStore(pg_url).reset(other)


def test_postgres_concurrent_writers_lose_nothing(pg_url: str) -> None:
    store, who = ProgressStore(pg_url), _unique("quin")
    threads, per_thread = 6, 10
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def worker(index: int) -> None:
        start.wait()
        try:
            for i in range(per_thread):
                store.record_quiz(who, 1, (index * per_thread + i) / 100)
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    try:
        assert errors == []
        result = store.progress(who)[1]
        assert (result.attempts, result.best_score) == (60, 0.59)
    finally:
        store.reset(who)


def test_postgres_restart_between_saves(
    pg_server: ThrowawayPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    store, who = ProgressStore(pg_server.url), _unique("ray")
    store.record_quiz(who, 3, 0.5)  # leaves a pooled connection that the restart will kill
    pg_server.stop()
    pg_server.start()
    with caplog.at_level("INFO", logger="lessons.course.progress"):
        assert store.record_quiz(who, 3, 0.6).attempts == 2  # the next save just works...
    assert "retrying" not in caplog.text  # ...because pool_pre_ping replaced the dead connection
    pg_server.stop()
    try:
        with pytest.raises(ProgressUnavailable, match=r"isn't reachable|was lost") as caught:
            store.record_quiz(who, 3, 0.7)  # server down: a message, not a traceback
        assert "Lessons still work" in caught.value.user_message
    finally:
        pg_server.start()
    result = store.record_quiz(who, 3, 0.9)  # back up: no app restart needed
    assert (result.attempts, result.best_score, result.completed) == (3, 0.9, True)


def test_postgres_dropped_connection_is_retried_once(
    pg_server: ThrowawayPostgres, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # With pool_pre_ping off, the pooled connection is found dead only when the upsert runs:
    # this exercises the store's own retry (a connection dropped mid-call, before COMMIT).
    real_create_engine = progress_engines.create_engine
    monkeypatch.setattr(
        progress_engines, "create_engine",
        lambda url, **kw: real_create_engine(url, **{**kw, "pool_pre_ping": False}),
    )
    store, who = ProgressStore(pg_server.url), _unique("sam")
    store.record_quiz(who, 4, 0.5)
    pg_server.stop()
    pg_server.start()
    with caplog.at_level("INFO", logger="lessons.course.progress"):
        result = store.record_quiz(who, 4, 0.8)
    assert (result.attempts, result.best_score) == (2, 0.8)  # counted once, not twice
    assert "retrying once" in caplog.text


def test_postgres_claim_and_predictions(pg_url: str) -> None:
    store = ProgressStore(pg_url)
    old, new = _unique("ann"), "browser:" + _unique("t")
    try:
        store.record_quiz(old, 1, 0.9)
        store.record_quiz(old, 2, 0.5)
        store.mark_visited(old, 2)
        store.record_prediction(old, 4, "collapse", "one expert")
        store.record_quiz(new, 2, 0.7)
        store.set_display_name(new, "Ann")
        assert store.claim_name(old, new) == 4
        mine = store.progress(new)
        assert (mine[1].passed, mine[2].best_score, mine[2].attempts) == (True, 0.7, 2)
        assert mine[2].first_attempt_at <= mine[2].last_attempt_at
        assert store.last_visited(new) == 2 and store.predictions(new, 4) == {"collapse": "one expert"}
        assert store.progress(old) == {} and store.claim_name(old, new) == 0
        assert store.display_name(new) == "Ann"
    finally:
        store.reset(old)
        store.reset(new)


def test_postgres_version_1_database_is_migrated_losing_nothing(pg_url: str) -> None:
    import sqlalchemy as sa

    name = f"v1_{uuid.uuid4().hex[:8]}"  # a database of its own: the shared one is already v2
    admin = sa.create_engine(sa.make_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = sa.make_url(pg_url).set(database=name)
    try:
        v1 = sa.create_engine(url)
        with v1.begin() as conn:
            for statement in _v1_statements("postgresql"):
                conn.exec_driver_sql(statement)
        v1.dispose()
        _check_migrated(ProgressStore(url))
        with sa.create_engine(url).connect() as conn:
            assert conn.exec_driver_sql("select version from schema_version").all() == [(2,)]
    finally:
        progress.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


# --- helpers ----------------------------------------------------------------------------------


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _python(code: str, *args: str) -> str:
    proc = _spawn(code, *args)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"  # shared PostgreSQL servers keep other tests' rows
