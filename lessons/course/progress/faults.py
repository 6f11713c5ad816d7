"""Progress database faults: one exception type, and messages a learner can read.

Every failure of the store reaches the caller as `ProgressUnavailable`; the functions here turn a
driver's exception or a bad file into one plain-English reason, and refuse a file that is not a
SQLite database before anything is written to it.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

SQLITE_BUSY_TIMEOUT_S = 2.0  # wait this long for another program's write, then tell the learner

class ProgressUnavailable(Exception):
    """The progress database can't serve this call. `user_message` is plain English, safe to show.

    The original exception stays chained as `__cause__` (and is logged) for whoever runs the app.
    """

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message

    @classmethod
    def because(cls, reason: str) -> ProgressUnavailable:
        return cls(
            f"Progress can't be saved right now: {reason}. "
            "Lessons still work; this session keeps your quiz results "
            "and saves them once the database is back."
        )


_SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


def _sqlite_path(url: URL) -> Path | None:
    """The file behind a SQLite URL (also `sqlite:///file:PATH?mode=ro&uri=true`); None in memory."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if url.query.get("uri") == "true" and database.startswith("file:"):
        database = database.removeprefix("file:").split("?", 1)[0]
        database = database.removeprefix("//") if database.startswith("///") else database
    if database in ("", ":memory:") or url.query.get("mode") == "memory":
        return None
    return Path(database).expanduser().absolute()


def prepare_sqlite_file(url: URL) -> None:
    """Refuse a file that is not a SQLite database before SQLite opens it for writing (which could
    turn someone's file into a database); create the folder of a new one."""
    path = _sqlite_path(url)
    if path is None:
        return
    try:
        if path.is_dir():
            raise ProgressUnavailable.because(f"the database path is a folder, not a file ({path})")
        if path.exists():
            with path.open("rb") as file:
                head = file.read(len(_SQLITE_MAGIC))
            if head and head != _SQLITE_MAGIC:  # an empty file is a valid empty database
                raise ProgressUnavailable.because(
                    f"the database file is not a SQLite database ({path}); it was left untouched"
                )
        elif url.query.get("mode") not in ("ro", "rw"):  # those modes never create a file
            path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProgressUnavailable.because(_describe_os_error(exc, path)) from exc


def _describe_os_error(exc: OSError, path: Path) -> str:
    if isinstance(exc, PermissionError):
        return f"MoE Lab may not read or write the database file or its folder ({path})"
    return f"the database file or its folder can't be used ({path}: {exc.strerror or exc})"


def _where(url: URL) -> str:
    path = _sqlite_path(url)
    if path is not None:
        return str(path)
    host = url.host or "localhost"
    return f"{host}:{url.port or 5432}/{url.database or ''}"  # never the password


_BUSY = "the database is busy because another program is holding it locked ({where}); try again in a moment"
# SQLite reports its faults in its messages; these fragments pick the explanation.
_SQLITE_REASONS = (
    (("locked", "busy"), _BUSY),
    (("readonly", "read-only"), "the database file is read-only ({where})"),
    (
        ("not a database", "malformed", "corrupt"),
        "the database file is damaged or not a SQLite database ({where}); it was left untouched",
    ),
    (("unable to open",), "the database file can't be opened ({where})"),
    (("disk i/o", "database or disk is full"), "the disk holding the database failed or is full ({where})"),
)


def describe_failure(exc: BaseException, url: URL) -> str:
    """The learner-facing reason for `exc` (no SQL, no password, no traceback)."""
    where = _where(url)
    if isinstance(exc, OSError):
        return _describe_os_error(exc, _sqlite_path(url) or Path(where))
    if not isinstance(exc, DBAPIError):
        return f"the database at {where} could not be used ({type(exc).__name__})"
    message = str(exc.orig).lower()
    if url.get_backend_name() == "sqlite":
        for fragments, reason in _SQLITE_REASONS:
            if any(fragment in message for fragment in fragments):
                return reason.format(where=where)
        return f"the database file reported an error ({where}: {type(exc.orig).__name__})"
    if exc.connection_invalidated:
        return f"the connection to the database server at {where} was lost"
    if "authentication" in message or "password" in message:
        return f"the database server at {where} refused the login"
    if "does not exist" in message and "database" in message:
        return f"the database {where} does not exist on its server"
    if "read-only" in message or "read only" in message:
        return f"the database server at {where} is read-only"
    if "connect" in message or "server" in message or "shutting down" in message:
        return f"the database server at {where} isn't reachable"
    return f"the database server at {where} reported an error ({type(exc.orig).__name__})"


def busy_message(url: URL) -> str:
    """The reason given when this process's own queue of SQLite saves is full."""
    return _BUSY.format(where=_where(url))
