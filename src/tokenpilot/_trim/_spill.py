"""Spill files: the whole output, content-addressed in the user cache dir, removed after a TTL.

The name is the BLAKE2b hash of the bytes, so the same output is written once and a path always
names the same content. Writing is atomic (temporary file, then rename).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import platformdirs

logger = logging.getLogger(__name__)
_CLEANUP_STAMP = ".last-cleanup"
_CLEANUP_EVERY_SECONDS = 3600.0


def default_spill_dir() -> Path:
    """`$XDG_CACHE_HOME/tokenpilot/trim` (or the platform's user cache dir)."""
    return Path(platformdirs.user_cache_dir("tokenpilot", appauthor=False)) / "trim"


class SpillWriter:
    """Streams bytes into a spill file, hashing as it goes; `finish()` names it by its hash."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._hash = hashlib.blake2b(digest_size=16)
        handle, name = tempfile.mkstemp(prefix=".spill-", suffix=".tmp", dir=directory)
        self._temp = Path(name)
        self._file = os.fdopen(handle, "wb")

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self._file.write(data)

    def finish(self) -> Path:
        self._file.close()
        target = self.directory / f"{self._hash.hexdigest()}.txt"
        if target.exists():
            self._temp.unlink(missing_ok=True)
            os.utime(target)  # seen again: keep it for another TTL
        else:
            os.replace(self._temp, target)
        return target

    def discard(self) -> None:
        self._file.close()
        self._temp.unlink(missing_ok=True)


def spill(chunks: Iterable[bytes], directory: Path | None = None, ttl_days: float = 7.0) -> Path:
    """Write `chunks` to their content-addressed file and return its path; old files are cleaned."""
    directory = directory or default_spill_dir()
    writer = SpillWriter(directory)
    try:
        for chunk in chunks:
            writer.write(chunk)
    except BaseException:
        writer.discard()
        raise
    path = writer.finish()
    cleanup(directory, ttl_days)
    return path


def cleanup(directory: Path, ttl_days: float, *, force: bool = False, now: float | None = None) -> int:
    """Remove spill files not written or seen for `ttl_days`; at most once an hour unless forced.
    Returns how many were removed."""
    now = time.time() if now is None else now
    stamp = directory / _CLEANUP_STAMP
    try:
        if not force and now - stamp.stat().st_mtime < _CLEANUP_EVERY_SECONDS:
            return 0
    except FileNotFoundError:
        pass
    removed = 0
    cutoff = now - ttl_days * 86400
    for path in directory.glob("*.txt"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue  # another process cleaned it first
    for temp in directory.glob(".spill-*.tmp"):  # left by a killed writer
        try:
            if temp.stat().st_mtime < cutoff:
                temp.unlink()
        except FileNotFoundError:
            continue
    stamp.touch()
    if removed:
        logger.info("removed expired spill files", extra={"directory": str(directory), "removed": removed})
    return removed


def read_spill(handle: str, directory: Path | None = None) -> str | None:
    """The original text kept under `handle` (a spill file's hash, with or without `.txt`), or None.

    Only a well-formed hash is looked up, so a handle can never name a file outside the spill dir.
    """
    name = handle.removesuffix(".txt")
    if len(name) != 32 or any(c not in "0123456789abcdef" for c in name):
        return None
    path = (directory or default_spill_dir()) / f"{name}.txt"
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return None
