"""Reading a command's text argument: a file path, or '-' for stdin; clear errors, no traceback."""

from __future__ import annotations

import sys
from pathlib import Path

from tokenpilot._exceptions import InputError


def read_source(source: str | Path, what: str = "file") -> str:
    """The text of `source` ('-' reads stdin), or an InputError naming it."""
    if str(source) == "-":
        return sys.stdin.read()
    path = Path(source)
    if not path.is_file():
        raise InputError(f"no such {what}: {source}")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {source}: {exc}") from None
