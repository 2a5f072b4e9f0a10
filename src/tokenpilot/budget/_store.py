"""The database behind budgets and the ledger: SQLite (WAL, one file) or PostgreSQL (shared).

Every write runs in one transaction that serialises with the others touching the same budgets:
SQLite takes its single write lock up front (`BEGIN IMMEDIATE`); PostgreSQL locks the budget rows
(`SELECT … FOR UPDATE`, always in scope order so two transactions cannot deadlock). Driver errors
become one `StoreError` that says what is wrong with which database, never a traceback.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy.exc
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine

from tokenpilot._exceptions import ConfigError, StoreError

try:
    import fcntl
except ImportError:  # Windows: SQLite's own busy handler only
    fcntl = None  # type: ignore[assignment]
from tokenpilot.budget import _schema

log = logging.getLogger("tokenpilot.budget")
log.addHandler(logging.NullHandler())  # a library logs; the application decides what is shown
T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT = 10.0
# PostgreSQL SQLSTATEs worth retrying: serialization failure, deadlock detected.
_RETRY_SQLSTATES = {"40001", "40P01"}
_MIGRATION_LOCK_KEY = 7_406_213_951  # pg_advisory_xact_lock key shared by every tokenpilot process


def resolve_url(url: str | None, default_path: Path) -> tuple[str, str]:
    """(SQLAlchemy URL, display form without password) for a user-supplied URL or path."""
    raw = (url or "").strip() or str(default_path)
    if raw.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        rest = raw.split("://", 1)[1]
        return "postgresql+psycopg://" + rest, "postgresql://" + re.sub(r":[^:@/]*@", ":***@", rest)
    if raw.startswith("sqlite:///"):
        path = Path(raw[len("sqlite:///") :])
    elif "://" in raw:
        scheme = raw.split("://", 1)[0]
        raise ConfigError(
            f"unsupported database URL scheme {scheme!r}: use sqlite:///PATH, a file path or postgresql://…",
            source="ledger url",
        )
    else:
        path = Path(raw)
    path = path.expanduser()
    return f"sqlite:///{path}", str(path)


class Store:
    """An open database with the current schema; `run(fn)` executes `fn(conn)` in one transaction."""

    def __init__(self, url: str | None, *, default_path: Path, busy_timeout: float = DEFAULT_BUSY_TIMEOUT):
        self.sa_url, self.display = resolve_url(url, default_path)
        self.busy_timeout = busy_timeout
        self.dialect = "postgresql" if self.sa_url.startswith("postgresql") else "sqlite"
        self._lock_fd: int | None = None
        self._thread_lock = threading.Lock()
        self.engine = self._create_engine()
        try:
            self.run(self._migrate)
        except BaseException:
            self.close()
            raise

    def _create_engine(self) -> Engine:
        if self.dialect == "sqlite":
            path = Path(self.display)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the directory for {self.display}: {exc}") from None
            engine = create_engine(
                self.sa_url, connect_args={"timeout": self.busy_timeout, "check_same_thread": False}
            )
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
            return engine
        try:
            engine = create_engine(
                self.sa_url,
                connect_args={"connect_timeout": max(1, int(self.busy_timeout))},
            )
        except ImportError:
            raise ConfigError(
                "PostgreSQL needs the psycopg driver: pip install 'tokenpilot[postgres]'", source="ledger url"
            ) from None
        lock_ms = max(1, int(self.busy_timeout * 1000))

        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Wait for a row or table lock as long as SQLite would, then fail clearly instead of hanging.
            with dbapi_connection.cursor() as cursor:
                cursor.execute(f"SET lock_timeout = {lock_ms}")
            dbapi_connection.commit()

        event.listen(engine, "connect", on_connect)
        return engine

    def _migrate(self, conn: Connection) -> None:
        if self.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        applied = _schema.applied_migrations(conn)
        newer = _schema.unknown_migrations(applied or [])
        if newer:
            raise StoreError(
                f"{self.display} has migrations newer than this tokenpilot understands "
                f"({', '.join(newer)}); upgrade tokenpilot"
            )
        if _schema.pending_migrations(applied):
            done = _schema.migrate(conn)
            log.info("migrated %s: %s", self.display, ", ".join(done))

    def run(self, fn: Callable[[Connection], T], *, read_only: bool = False, attempts: int = 5) -> T:
        """`fn(conn)` in one transaction: committed when it returns, rolled back when it raises.

        `read_only` transactions on SQLite start deferred (a WAL snapshot, no write lock), so reports
        and `usage()` never wait for, or hold up, the agents writing.
        """
        for attempt in range(1, attempts + 1):
            try:
                with self._writer_turn(read_only), self.engine.connect() as conn:
                    conn.execution_options(tokenpilot_read_only=read_only)
                    with conn.begin():
                        return fn(conn)
            except sqlalchemy.exc.DBAPIError as exc:
                # Retry deadlocks and serialization failures, and a pooled connection the server dropped.
                if attempt < attempts and (_sqlstate(exc) in _RETRY_SQLSTATES or exc.connection_invalidated):
                    time.sleep(0.01 * attempt)
                    continue
                raise self._error(exc) from None
            except sqlalchemy.exc.SQLAlchemyError as exc:
                raise StoreError(f"{self.display}: {exc}") from None
        raise AssertionError("unreachable")

    @contextmanager
    def _writer_turn(self, read_only: bool) -> Iterator[None]:
        """On SQLite, queue writers on a lock file before BEGIN IMMEDIATE.

        SQLite's own busy handler backs off up to 100 ms between tries, so under many writers one
        process can lose the race for seconds; polling a file lock every few ms keeps waits fair.
        """
        if self.dialect != "sqlite" or read_only:
            yield
            return
        # A file lock is per process: threads sharing this store queue on a thread lock first.
        if not self._thread_lock.acquire(timeout=self.busy_timeout):
            raise StoreError(
                f"SQLite database {self.display} is busy in this process "
                f"(waited {self.busy_timeout:g} s); nothing was written, try again"
            )
        try:
            with self._file_turn():
                yield
        finally:
            self._thread_lock.release()

    @contextmanager
    def _file_turn(self) -> Iterator[None]:
        if fcntl is None:
            yield
            return
        if self._lock_fd is None:
            try:
                self._lock_fd = os.open(self.display + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StoreError(f"cannot create the lock file beside {self.display}: {exc}") from None
        deadline = time.monotonic() + self.busy_timeout
        pause = 0.0005
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"SQLite database {self.display} is locked by another process "
                        f"(waited {self.busy_timeout:g} s); nothing was written, try again"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.004)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def lock_for_update(self) -> bool:
        """Whether row locks must be taken explicitly (SQLite already holds the database write lock)."""
        return self.dialect == "postgresql"

    def close(self) -> None:
        self.engine.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _error(self, exc: sqlalchemy.exc.DBAPIError) -> StoreError:
        message = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        lower = message.lower()
        if self.dialect == "sqlite":
            if "locked" in lower or "busy" in lower:
                return StoreError(
                    f"SQLite database {self.display} is locked by another process "
                    f"(waited {self.busy_timeout:g} s); nothing was written, try again"
                )
            if "not a database" in lower or "malformed" in lower or "corrupt" in lower:
                return StoreError(f"SQLite database {self.display} is corrupt or not a database ({message})")
            if "unable to open" in lower:
                return StoreError(f"cannot open SQLite database {self.display} ({message})")
            if "readonly" in lower or "read-only" in lower:
                return StoreError(f"SQLite database {self.display} is read-only ({message})")
        elif _sqlstate(exc) == "55P03":
            return StoreError(
                f"PostgreSQL database {self.display} is locked by another session "
                f"(waited {self.busy_timeout:g} s); nothing was written, try again"
            )
        elif isinstance(exc, sqlalchemy.exc.OperationalError) and (
            "connect" in lower or "connection" in lower or "timeout" in lower
        ):
            return StoreError(f"cannot reach PostgreSQL at {self.display} ({message})")
        return StoreError(f"database error on {self.display}: {message}")


def _sqlstate(exc: sqlalchemy.exc.DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself instead of pysqlite's deferred BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # Writers take the write lock at the start so check-then-write cannot interleave across processes.
    read_only = conn.get_execution_options().get("tokenpilot_read_only", False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def default_db_path() -> Path:
    """`$XDG_DATA_HOME/tokenpilot/ledger.db` (platformdirs' user data dir elsewhere)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("tokenpilot", appauthor=False)) / "ledger.db"


def env_url() -> str | None:
    return os.environ.get("TOKENPILOT_DB_URL") or None
