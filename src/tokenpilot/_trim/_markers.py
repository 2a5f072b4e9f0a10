"""The text left where something was elided."""

from __future__ import annotations

from pathlib import Path


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def gap_marker(lines: int, tokens: int) -> str:
    """`[… 1,204 lines, 9,880 tokens omitted …]`."""
    return f"[… {_plural(lines, 'line')}, {_plural(tokens, 'token')} omitted …]"


def repeat_marker(count: int, what: str = "similar line") -> str:
    """`[… ×37 similar lines …]`: a run collapsed after its first line."""
    return f"[… ×{count:,} {what}{'' if count == 1 else 's'} …]"


def spill_note(path: Path, lines: int, tokens: int) -> str:
    """The line that names the file holding the whole output."""
    return f"[full output ({_plural(lines, 'line')}, {_plural(tokens, 'token')}): {path}]"
