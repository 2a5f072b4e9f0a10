"""The on-disk cache of per-file results (features, secret findings, outlines, token counts).

SQLite in the user cache directory (`$XDG_CACHE_HOME/tokenpilot/pack.sqlite3` on Linux, via
platformdirs), or a path of your choosing. Every entry is keyed by the file's content hash (plus the
kind of result and its version), so it can never be stale; the one exception, `stat:1`, is keyed
by a file's stat and kept only for files not changed just before the run (discover.py). Several
runs may share the file: WAL journaling, a busy timeout, and `INSERT OR REPLACE` of values that are
equal for equal keys. Any database error turns the cache off for that run (logged); it never fails
a pack.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

CACHE_FILENAME = "pack.sqlite3"
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: one table of (kind, key) -> value
    (
        "CREATE TABLE IF NOT EXISTS entries ("
        " kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (kind, key)"
        ") WITHOUT ROWID",
    ),
    # 2: a rowid table, its key in an index of its own: in a WITHOUT ROWID table an entry's value
    # sits in the key's b-tree, and a large one on an interior page was read whole by every lookup
    # passing it (a lookup took 0.5 ms in the nine repositories' 45 MB cache)
    (
        "CREATE TABLE entries_by_rowid ("
        " kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (kind, key))",
        "INSERT INTO entries_by_rowid (kind, key, value) SELECT kind, key, value FROM entries",
        "DROP TABLE entries",
        "ALTER TABLE entries_by_rowid RENAME TO entries",
    ),
)
_CHUNK = 500
_BUSY_TIMEOUT_MS = 10_000


def default_cache_path() -> Path:
    """Where the cache lives unless told otherwise."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("tokenpilot", appauthor=False)) / CACHE_FILENAME


class PackCache:
    """A key-value store of strings by (kind, key); `PackCache(None)` is a cache that keeps nothing.

    >>> cache = PackCache(None)
    >>> cache.get_many("terms:1", ["abc"])
    {}
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        if path is not None:
            self._db = self._open(path)

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection | None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(path), timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            for number, statements in enumerate(_MIGRATIONS, start=1):
                if number > version:
                    db.execute("BEGIN IMMEDIATE")
                    # another process may have migrated it since the version was read
                    if int(db.execute("PRAGMA user_version").fetchone()[0]) < number:
                        for statement in statements:
                            db.execute(statement)
                        db.execute(f"PRAGMA user_version = {number}")
                    db.execute("COMMIT")
            return db
        except (OSError, sqlite3.Error) as exc:
            log.warning("pack cache disabled: %s", exc, extra={"cache_path": str(path)})
            return None

    @property
    def enabled(self) -> bool:
        return self._db is not None

    def get_many(self, kind: str, keys: Sequence[str]) -> dict[str, str]:
        """The stored values of those keys that have one."""
        if self._db is None or not keys:
            return {}
        found: dict[str, str] = {}
        unique = list(dict.fromkeys(keys))
        try:
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, value FROM entries WHERE kind = ? AND key IN ({marks})", (kind, *chunk)
                )
                found.update(rows.fetchall())
        except sqlite3.Error as exc:
            self._disable(exc)
        return found

    def put_many(self, kind: str, items: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        """Store values; equal keys always carry equal values, so a concurrent writer is harmless."""
        if self._db is None:
            return
        pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
        if not pairs:
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO entries (kind, key, value) VALUES (?, ?, ?)",
                [(kind, key, value) for key, value in pairs],
            )
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._disable(exc)

    def _disable(self, exc: sqlite3.Error) -> None:
        log.warning("pack cache disabled after an error: %s", exc, extra={"cache_path": str(self.path)})
        self.close()

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
