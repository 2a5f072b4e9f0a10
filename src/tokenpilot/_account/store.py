"""The database behind the account: SQLite (WAL, one file) or PostgreSQL (shared by several hosts).

Every write runs in one short transaction that serialises with the others touching the same budgets:
SQLite takes its single write lock up front (`BEGIN IMMEDIATE`, queued on a lock file); PostgreSQL
locks a budget's row with the conditional UPDATE that changes it, always in scope order so two
transactions cannot deadlock. Driver errors become one `StoreError` that says what is wrong with
which database, never a traceback.

A store refuses to be damaged: a SQLite file must pass `PRAGMA quick_check` when opened (about 1 s
for a million records), and
a database holding other tables but no tokenpilot schema is refused unless `add_schema` is given.
Opened read-only it never creates, migrates or locks anything: a missing ledger is an error naming
the path, and a reader who may not write the file or its directory can still read it.
"""

from __future__ import annotations

import contextlib
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

from tokenpilot._exceptions import ConfigError, StoreBusy, StoreError

try:
    from tokenpilot._account.lockfile import FileLock

    HAS_FLOCK = True
except ImportError:  # Windows (no fcntl): SQLite's own busy handler only
    HAS_FLOCK = False
from tokenpilot._account import schema as _schema

log = logging.getLogger("tokenpilot.account")
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


class _Driver:
    __slots__ = ("driver_connection",)

    def __init__(self, driver_connection: Any):
        self.driver_connection = driver_connection


class DriverTransaction:
    """A transaction on a driver connection, shaped like the parts of SQLAlchemy's that the hot
    path's statements use (`tokenpilot._account.counters.execute`): dialect, connection, info."""

    __slots__ = ("connection", "dialect", "info")

    def __init__(self, dialect: Any, driver_connection: Any):
        self.dialect = dialect
        self.connection = _Driver(driver_connection)
        self.info: dict[str, Any] = {}


class Store:
    """An open database with the current schema; `run(fn)` executes `fn(conn)` in one transaction.

    `transact(fn)` is the hot path's write transaction: the same serialisation and error mapping,
    on a driver connection each thread keeps open (no pool checkout, no SQLAlchemy events).
    """

    def __init__(
        self,
        url: str | None,
        *,
        default_path: Path,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        read_only: bool = False,
        add_schema: bool = False,
        durable: bool = False,
    ):
        self.sa_url, self.display = resolve_url(url, default_path)
        self.durable = durable
        self.busy_timeout = busy_timeout
        self.read_only = read_only
        self.add_schema = add_schema
        self.dialect = "postgresql" if self.sa_url.startswith("postgresql") else "sqlite"
        self._file_lock: FileLock | None = None
        self._thread_lock = threading.Lock()
        self._wal = False
        self._local = threading.local()
        self._drivers: list[Any] = []  # every thread's driver connection, closed by close()
        self._drivers_lock = threading.Lock()
        self._connections_made = 0  # driver connections opened, so a new one never reads as the old
        existed = self.dialect == "postgresql" or self._sqlite_file_exists()
        self.engine = self._create_engine()
        try:
            if read_only:
                self.run(self._check_readable, read_only=True)
            else:
                if self.dialect == "sqlite" and existed:
                    self.run(self._check_writable, read_only=True)
                self.run(self._migrate)
                if self.dialect == "sqlite":
                    # Only a checked file is switched to WAL: the checks themselves change no byte.
                    self._wal = True
                    self.engine.dispose()
        except BaseException:
            self.close()
            raise

    def _sqlite_file_exists(self) -> bool:
        path = Path(self.display)
        if path.is_dir():
            raise StoreError(f"{self.display} is a directory, not a ledger file")
        if path.exists():
            return path.stat().st_size > 0
        if self.read_only:
            raise StoreError(
                f"no ledger at {self.display} (check the path, or write to it first to create it)"
            )
        return False

    def _sqlite_uri(self) -> str:
        """How a reader opens the file: read-only, and immutable when it may not create the WAL index."""
        path = Path(self.display).resolve()
        uri = f"file:{path}?mode=ro"
        wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
        if not shm.exists() and not wal.exists() and not os.access(path.parent, os.W_OK):
            # No writer has it open (no WAL files) and none can be made: it cannot change under us.
            uri += "&immutable=1"
        return uri

    def _create_engine(self) -> Engine:
        if self.dialect == "sqlite":
            if self.read_only:
                import sqlite3

                uri = self._sqlite_uri()
                engine = create_engine(
                    "sqlite://",
                    creator=lambda: sqlite3.connect(
                        uri, uri=True, timeout=self.busy_timeout, check_same_thread=False
                    ),
                )
                event.listen(engine, "connect", _sqlite_reader_on_connect)
                event.listen(engine, "begin", _sqlite_on_begin)
                return engine
            path = Path(self.display)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the directory for {self.display}: {exc}") from None
            engine = create_engine(
                self.sa_url, connect_args={"timeout": self.busy_timeout, "check_same_thread": False}
            )
            event.listen(engine, "connect", self._sqlite_on_connect)
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
        event.listen(
            engine, "connect", lambda dbapi_connection, _record: self._postgres_session(dbapi_connection)
        )
        return engine

    def _postgres_session(self, dbapi_connection: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            # Wait for a row or table lock as long as SQLite would, then fail clearly instead of hanging.
            cursor.execute(f"SET lock_timeout = {max(1, int(self.busy_timeout * 1000))}")
            if not self.durable:
                # A commit returns before its WAL reaches disk, like SQLite's synchronous=NORMAL:
                # a server crash may lose the last moments, never consistency. The hot budget
                # row is locked until commit, so a flush per commit would cap a budget at ~1/fsync.
                cursor.execute("SET synchronous_commit = off")
        dbapi_connection.commit()

    def _sqlite_on_connect(self, dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself instead of pysqlite's deferred BEGIN.
        dbapi_connection.isolation_level = None
        if self._wal:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            # NORMAL: a power loss may lose the last commits, never consistency; FULL syncs each one.
            dbapi_connection.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}")

    def _check_writable(self, conn: Connection) -> None:
        """An existing SQLite file is written only when intact and a ledger (or `add_schema`)."""
        self._check_intact(conn)
        applied = _schema.applied_migrations(conn)
        self._newer(applied)
        if applied is None and not self.add_schema:
            foreign = self._foreign_tables(conn)
            if foreign:
                raise self._not_a_ledger(foreign)

    def _check_intact(self, conn: Connection) -> None:
        """Refuse to write into a damaged SQLite file (reads every page once, on open)."""
        problems = [row[0] for row in conn.exec_driver_sql("PRAGMA quick_check(3)")]
        if problems != ["ok"]:
            raise StoreError(
                f"SQLite database {self.display} is corrupt or not a database ({'; '.join(problems)[:300]}); "
                "nothing was read or written"
            )

    def _foreign_tables(self, conn: Connection) -> list[str]:
        names = sqlalchemy.inspect(conn).get_table_names()
        return sorted(name for name in names if not name.startswith("tp_"))

    def _newer(self, applied: list[str] | None) -> None:
        newer = _schema.unknown_migrations(applied or [])
        if newer:
            raise StoreError(
                f"{self.display} has migrations newer than this tokenpilot understands "
                f"({', '.join(newer)}); upgrade tokenpilot"
            )

    def _not_a_ledger(self, foreign: list[str]) -> StoreError:
        shown = ", ".join(foreign[:5]) + (", …" if len(foreign) > 5 else "")
        return StoreError(
            f"{self.display} is not a tokenpilot ledger: it holds other tables ({shown}); "
            "to add tokenpilot's tables beside them, pass --add-schema (add_schema=True)"
        )

    def _check_readable(self, conn: Connection) -> None:
        if self.dialect == "sqlite":
            self._check_intact(conn)  # a damaged file is refused, not half-reported
        applied = _schema.applied_migrations(conn)
        if applied is None:
            foreign = self._foreign_tables(conn)
            if foreign:
                raise self._not_a_ledger(foreign)
            raise StoreError(f"no ledger at {self.display} (it holds no tokenpilot tables yet)")
        self._newer(applied)
        if _schema.pending_migrations(applied):
            raise StoreError(
                f"{self.display} was written by an older tokenpilot; upgrade it once with "
                "`tokenpilot ledger migrate` (or any command that writes) before reading it"
            )

    def _migrate(self, conn: Connection) -> None:
        if self.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        applied = _schema.applied_migrations(conn)
        self._newer(applied)
        if applied is None and not self.add_schema:
            foreign = self._foreign_tables(conn)
            if foreign:
                raise self._not_a_ledger(foreign)
        if _schema.pending_migrations(applied):
            done = _schema.migrate(conn)
            log.info("migrated %s: %s", self.display, ", ".join(done))

    def run(self, fn: Callable[[Connection], T], *, read_only: bool = False, attempts: int = 5) -> T:
        """`fn(conn)` in one transaction: committed when it returns, rolled back when it raises.

        `read_only` transactions on SQLite start deferred (a WAL snapshot, no write lock), so reports
        and `usage()` never wait for, or hold up, the agents writing.
        """
        if self.read_only and not read_only:
            raise StoreError(f"{self.display} was opened read-only; nothing was written")
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

    def _driver_connection(self) -> Any:
        driver = getattr(self._local, "driver", None)
        if driver is not None:
            return driver
        dbapi = self.engine.dialect.loaded_dbapi
        try:
            if self.dialect == "sqlite":
                driver = dbapi.connect(
                    self.display, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
                )
                driver.execute("PRAGMA journal_mode=WAL")
                driver.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}")
            else:
                cargs, cparams = self.engine.dialect.create_connect_args(self.engine.url)
                driver = dbapi.connect(*cargs, **cparams, connect_timeout=max(1, int(self.busy_timeout)))
                self._postgres_session(driver)
                driver.autocommit = True
        except dbapi.Error as exc:
            raise self._error(_wrapped(exc, dbapi)) from None
        self._local.driver = driver
        with self._drivers_lock:
            self._drivers.append(driver)
            self._connections_made += 1
            self._local.made = self._connections_made
        return driver

    def others_committed_token(self) -> tuple[int, int] | None:
        """SQLite: a token that stays equal while no other connection (another thread's, another
        process's) commits to the file — `PRAGMA data_version` on this thread's driver connection,
        with which connection it was. None on PostgreSQL (no such signal).
        """
        if self.dialect != "sqlite":
            return None
        driver = self._driver_connection()
        dbapi = self.engine.dialect.loaded_dbapi
        try:
            version = driver.execute("PRAGMA data_version").fetchone()[0]
        except dbapi.Error as exc:
            raise self._error(_wrapped(exc, dbapi)) from None
        return self._local.made, int(version)

    def read_on_driver(self, statement: str, params: dict[str, Any]) -> list[Any]:
        """SQLite: one read on this thread's driver connection (the one `others_committed_token`
        watches), outside any write lock."""
        driver = self._driver_connection()
        dbapi = self.engine.dialect.loaded_dbapi
        try:
            return list(driver.execute(statement, params).fetchall())
        except dbapi.Error as exc:
            raise self._error(_wrapped(exc, dbapi)) from None

    def _drop_driver_connection(self) -> None:
        driver = getattr(self._local, "driver", None)
        self._local.driver = None
        if driver is not None:
            with self._drivers_lock:
                self._drivers.remove(driver)
            with contextlib.suppress(Exception):
                driver.close()

    def call(self, statement: str, params: tuple[Any, ...]) -> list[Any] | None:
        """Run one statement on PostgreSQL in autocommit (its own transaction, one round trip).

        Returns its rows, or None when the statement raised one of the hot path's fallback SQLSTATEs
        (`hot_path.FALLBACK_SQLSTATES`) or the connection broke: the caller then runs the general
        transaction, which retries and reports errors itself.
        """
        from tokenpilot._account.hot_path import FALLBACK_SQLSTATES

        dbapi = self.engine.dialect.loaded_dbapi
        driver = self._driver_connection()
        try:
            with driver.cursor() as cursor:
                cursor.execute(statement, params)
                return cursor.fetchall() if cursor.description is not None else []
        except dbapi.Error as raised:
            exc = _wrapped(raised, dbapi)
            if _sqlstate(exc) in FALLBACK_SQLSTATES or _sqlstate(exc) in _RETRY_SQLSTATES:
                return None
            if bool(getattr(driver, "closed", False) or getattr(driver, "broken", False)):
                self._drop_driver_connection()
                return None
            raise self._error(exc) from None

    def call_prepared(
        self, name: str, statement: str, params: tuple[Any, ...]
    ) -> list[tuple[int | None, ...]] | None:
        """`call` for the hot path's functions: a prepared statement `name` run through libpq itself.

        `statement` uses `$1`, `$2`, … and is prepared once per connection; `params` are str, int,
        bool or None, and every column of the result is a bigint (an int, or None for NULL).
        psycopg's cursor costs ~40 µs of Python per statement, libpq's exec ~15 µs, twice per
        reservation. Any error returns None: the general transaction then runs, retries and
        reports it (the function is one statement in autocommit, so it wrote nothing).
        """
        from psycopg import pq

        driver = self._driver_connection()
        pgconn = driver.pgconn
        prepared: set[str] | None = getattr(self._local, "prepared", None)
        if prepared is None or getattr(self._local, "prepared_on", None) is not driver:
            prepared = self._local.prepared = set()
            self._local.prepared_on = driver
        if name not in prepared:
            if pgconn.prepare(name.encode(), statement.encode()).status != pq.ExecStatus.COMMAND_OK:
                self._given_up(driver)
                return None
            prepared.add(name)
        values = [
            None if v is None else (b"t" if v else b"f") if isinstance(v, bool) else str(v).encode()
            for v in params
        ]
        result = pgconn.exec_prepared(name.encode(), values)
        if result.status != pq.ExecStatus.TUPLES_OK:
            from tokenpilot._account.hot_path import FALLBACK_SQLSTATES

            state = result.error_field(pq.DiagnosticField.SQLSTATE) or b""
            if state.decode() not in FALLBACK_SQLSTATES:
                prepared.discard(name)  # prepared again next time (a pooler may have dropped it)
            self._given_up(driver)
            return None
        get = result.get_value
        columns = range(result.nfields)
        return [
            tuple(None if (v := get(row, k)) is None else int(v) for k in columns)
            for row in range(result.ntuples)
        ]

    def _given_up(self, driver: Any) -> None:
        from psycopg import pq

        if driver.pgconn.status != pq.ConnStatus.OK:  # a broken connection is made again next time
            self._drop_driver_connection()

    def transact(self, fn: Callable[[DriverTransaction], T], *, attempts: int = 5, wait: bool = True) -> T:
        """`fn(tx)` in one write transaction on this thread's driver connection (see the class).

        `wait=False` raises `StoreBusy` at once, before anything is written, when another writer
        holds SQLite's lock (for a caller on an event loop, which then writes from a thread).
        """
        if self.read_only:
            raise StoreError(f"{self.display} was opened read-only; nothing was written")
        dbapi = self.engine.dialect.loaded_dbapi
        if getattr(self._local, "batch", False):
            return self._in_savepoint(fn, dbapi)
        for attempt in range(1, attempts + 1):
            try:
                driver = self._driver_connection()
                with self._writer_turn(False, wait=wait):
                    if self.dialect == "postgresql":
                        # The connection is in autocommit (for `call`): this block is BEGIN … COMMIT.
                        with driver.transaction():
                            return fn(DriverTransaction(self.engine.dialect, driver))
                    try:
                        driver.execute("BEGIN IMMEDIATE")
                        result = fn(DriverTransaction(self.engine.dialect, driver))
                        driver.commit()
                        return result
                    except BaseException:
                        with contextlib.suppress(Exception):
                            driver.rollback()
                        raise
            except (sqlalchemy.exc.DBAPIError, dbapi.Error) as raised:
                exc = raised if isinstance(raised, sqlalchemy.exc.DBAPIError) else _wrapped(raised, dbapi)
                broken = bool(getattr(driver, "closed", False) or getattr(driver, "broken", False))
                if broken:
                    self._drop_driver_connection()
                if attempt < attempts and (_sqlstate(exc) in _RETRY_SQLSTATES or broken):
                    time.sleep(0.01 * attempt)
                    continue
                raise self._error(exc) from None
        raise AssertionError("unreachable")

    @contextmanager
    def batch(self, *, wait: bool = True) -> Iterator[None]:
        """This thread's `transact` calls inside the block share one SQLite write transaction.

        Each runs in a savepoint of its own (one that raises is rolled back alone, the others stay);
        one BEGIN, lock turn and COMMIT for all. `wait=False` raises `StoreBusy` at once, before
        anything is written, when another writer holds the lock. On PostgreSQL, or nested, each
        `transact` stays its own transaction.
        """
        if self.dialect != "sqlite" or self.read_only or getattr(self._local, "batch", False):
            yield
            return
        dbapi = self.engine.dialect.loaded_dbapi
        driver = self._driver_connection()
        with self._writer_turn(False, wait=wait):
            try:
                driver.execute("BEGIN IMMEDIATE")
            except dbapi.Error as raised:
                # SQLite's own lock is held (a writer that skips the lock file): nothing was written.
                if not wait:
                    raise StoreBusy(f"SQLite database {self.display} is being written") from None
                raise self._error(_wrapped(raised, dbapi)) from None
            self._local.batch = True
            try:
                yield
                driver.commit()
            except dbapi.Error as raised:
                with contextlib.suppress(Exception):
                    driver.rollback()
                raise self._error(_wrapped(raised, dbapi)) from None
            except BaseException:
                with contextlib.suppress(Exception):
                    driver.rollback()
                raise
            finally:
                self._local.batch = False

    def _in_savepoint(self, fn: Callable[[DriverTransaction], T], dbapi: Any) -> T:
        driver = self._driver_connection()
        try:
            driver.execute("SAVEPOINT tp_batch")
            try:
                result = fn(DriverTransaction(self.engine.dialect, driver))
            except BaseException:
                driver.execute("ROLLBACK TO tp_batch")
                driver.execute("RELEASE tp_batch")
                raise
            driver.execute("RELEASE tp_batch")
            return result
        except dbapi.Error as raised:
            raise self._error(_wrapped(raised, dbapi)) from None

    @contextmanager
    def _writer_turn(self, read_only: bool, *, wait: bool = True) -> Iterator[None]:
        """On SQLite, queue writers on a lock file before BEGIN IMMEDIATE.

        SQLite's own busy handler backs off up to 100 ms between tries, so under many writers one
        process can lose the race for seconds; polling a file lock every few ms keeps waits fair.
        """
        if self.dialect != "sqlite" or read_only:
            yield
            return
        # A file lock is per process: threads sharing this store queue on a thread lock first.
        if not wait:
            if not self._thread_lock.acquire(blocking=False):
                raise StoreBusy(f"SQLite database {self.display} is being written in this process")
            try:
                with self._file_turn(wait=False):
                    yield
            finally:
                self._thread_lock.release()
            return
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
    def _file_turn(self, *, wait: bool = True) -> Iterator[None]:
        if not HAS_FLOCK:
            yield
            return
        if self._file_lock is None:
            try:
                fd = os.open(self.display + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StoreError(
                    f"SQLite database {self.display} is read-only for this user: cannot create the lock "
                    f"file beside it ({exc.strerror}); nothing was written"
                ) from None
            self._file_lock = FileLock(fd)
        if not wait:
            if not self._file_lock.try_acquire():
                raise StoreBusy(f"SQLite database {self.display} is being written by another process")
        elif not self._file_lock.acquire(self.busy_timeout):
            raise StoreError(
                f"SQLite database {self.display} is locked by another process "
                f"(waited {self.busy_timeout:g} s); nothing was written, try again"
            )
        try:
            yield
        finally:
            self._file_lock.release()

    def lock_for_update(self) -> bool:
        """Whether row locks must be taken explicitly (SQLite already holds the database write lock)."""
        return self.dialect == "postgresql"

    def close(self) -> None:
        with self._drivers_lock:
            drivers, self._drivers = self._drivers, []
        for driver in drivers:
            with contextlib.suppress(Exception):
                driver.close()
        self._local = threading.local()
        self.engine.dispose()
        if self._file_lock is not None:
            self._file_lock.close()
            self._file_lock = None

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


def _wrapped(exc: Exception, dbapi: Any) -> sqlalchemy.exc.DBAPIError:
    """A driver's error as SQLAlchemy's, so one mapping turns both into a `StoreError`."""
    wrapped = sqlalchemy.exc.DBAPIError.instance(None, None, exc, dbapi.Error)
    assert isinstance(wrapped, sqlalchemy.exc.DBAPIError)
    return wrapped


def _sqlstate(exc: sqlalchemy.exc.DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def _sqlite_reader_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    dbapi_connection.execute("PRAGMA query_only = 1")


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
