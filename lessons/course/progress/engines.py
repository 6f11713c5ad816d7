"""Progress database engines: one SQLAlchemy engine per URL, shared by every store in the process.

Each comes with the lock this process's SQLite writers queue on (`store.ProgressStore._write_turn`).
SQLite engines emit BEGIN themselves, so writes take the lock up front (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL

from lessons.course.progress.faults import SQLITE_BUSY_TIMEOUT_S

CONNECT_TIMEOUT_S = 5  # an unreachable server fails fast instead of freezing the page

# url -> (engine, the lock this process's SQLite writers queue on)
_engines: dict[str, tuple[Engine, threading.Lock]] = {}
_engines_lock = threading.Lock()


def engine_for(url: URL) -> tuple[Engine, threading.Lock]:
    key = url.render_as_string(hide_password=False)
    with _engines_lock:
        if key not in _engines:
            _engines[key] = (_create_engine(url), threading.Lock())
        return _engines[key]


def _create_engine(url: URL) -> Engine:
    backend = url.get_backend_name()
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT_S  # the busy timeout
    elif backend == "postgresql" and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    # pool_pre_ping: a connection the server dropped (a restart) is replaced at checkout.
    engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    if backend == "sqlite":
        _take_over_sqlite_transactions(engine)
    return engine


def _take_over_sqlite_transactions(engine: Engine) -> None:
    """Emit BEGIN ourselves (the recipe in SQLAlchemy's SQLite docs) so that DDL is transactional
    and writes start with BEGIN IMMEDIATE: the write lock is taken up front, under the busy
    timeout, instead of a read lock being upgraded midway (which fails at once, without waiting)."""

    @event.listens_for(engine, "connect")
    def _no_driver_begin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("moe_lab_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def dispose() -> None:
    """Close every pooled connection and forget the engines (tests; a server address change)."""
    with _engines_lock:
        engines = [engine for engine, _ in _engines.values()]
        _engines.clear()
    for engine in engines:
        engine.dispose()
