"""JSON: the structure (every key, as far as the budget allows) kept; long arrays, long strings
and deep containers cut with counts. The result is still valid JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tokenpilot._tokens import Tokenizer
from tokenpilot._trim._document import Document, Unit


@dataclass(frozen=True, slots=True)
class Level:
    items: int  # array items kept
    chars: int  # string characters kept
    keys: int  # object keys kept
    depth: int  # containers below this depth summarised


# From the most to the least detailed; the first level that fits wins.
LEVELS = (
    Level(10**9, 10**9, 10**9, 10**9),
    Level(50, 2000, 200, 64),
    Level(20, 400, 100, 32),
    Level(10, 200, 60, 16),
    Level(5, 100, 40, 12),
    Level(3, 60, 30, 8),
    Level(2, 40, 20, 6),
    Level(1, 24, 12, 4),
    Level(1, 16, 8, 3),
    Level(0, 12, 6, 2),
    Level(0, 8, 4, 1),
    Level(0, 8, 2, 0),
)


def parse(text: str) -> Any:
    """The JSON value of `text`, or raise ValueError."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        raise ValueError("not a JSON object or array")
    try:
        return json.loads(stripped)
    except RecursionError:  # nested too deeply to read: trimmed as text
        raise ValueError("JSON nested too deeply") from None


def _shrink(value: Any, level: Level, depth: int) -> Any:
    if isinstance(value, str):
        if len(value) > level.chars:
            return value[: level.chars] + f"… [+{len(value) - level.chars:,} chars]"
        return value
    if isinstance(value, list):
        if depth >= level.depth and value:
            return f"[… {len(value):,} items …]"
        kept = [_shrink(v, level, depth + 1) for v in value[: level.items]]
        if len(value) > level.items:
            kept.append(f"[… {len(value) - level.items:,} more items …]")
        return kept
    if isinstance(value, dict):
        if depth >= level.depth and value:
            names = list(value)[: level.keys]
            more = len(value) - len(names)
            return "{… keys: " + ", ".join(names) + (f", +{more:,} more" if more else "") + " …}"
        result: dict[str, Any] = {}
        for n, (key, item) in enumerate(value.items()):
            if n >= level.keys:
                result["…"] = f"{len(value) - level.keys:,} more keys"
                break
            result[key] = _shrink(item, level, depth + 1)
        return result
    return value


def render(value: Any, level: Level, indent: int | None) -> str:
    return json.dumps(_shrink(value, level, 0), indent=indent, ensure_ascii=False)


def reduce(doc: Document, start: int, end: int, limit: int, tokenizer: Tokenizer) -> list[Unit] | None:
    """One unit: the most detailed level whose rendering fits `limit`; None if not JSON."""
    text = doc.span_text(start, end)
    try:
        value = parse(text)
    except ValueError:
        return None
    indent = 2 if end - start > 1 else None  # keep the original's compact or pretty layout
    low, high = 0, len(LEVELS) - 1
    best: str | None = None
    # Detail shrinks monotonically with the level, so binary search for the first that fits.
    while low <= high:
        middle = (low + high) // 2
        candidate = render(value, LEVELS[middle], indent)
        if tokenizer.count(candidate + "\n") <= limit:
            best, high = candidate, middle - 1
        else:
            low = middle + 1
    if best is None:
        return None
    cut = best.count("\n") + 1 != end - start or best != text.strip()
    if not cut:
        return [Unit(start, end, 0)]
    return [doc.condensed(start, end, best, priority=0)]
