"""A corpus of real source code shared by the benchmarks: the running Python's stdlib sources."""

from __future__ import annotations

from pathlib import Path


def python_sources(root: Path, megabytes: float) -> list[str]:
    """Texts of `*.py` files under `root`, in path order, until `megabytes` of UTF-8 is reached."""
    texts: list[str] = []
    size = 0
    for path in sorted(root.rglob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        texts.append(text)
        size += len(text.encode())
        if size >= megabytes * 1_000_000:
            break
    return texts
