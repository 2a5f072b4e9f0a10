"""Unit builders shared by reducers: error lines with context, and filler for everything else."""

from __future__ import annotations

from collections.abc import Collection

from tokenpilot._trim._document import Document, Unit, head_tail_order
from tokenpilot._trim._patterns import is_error_line

CONTEXT_LINES = 2
FILLER_PRIORITY = 6


def lines_units(doc: Document, indexes: Collection[int], priority: int, start: int, end: int) -> list[Unit]:
    """One unit per line, ordered last/first alternately (the end of an output matters most)."""
    return [Unit(i, i + 1, priority, head_tail_order(i, start, end)) for i in sorted(indexes)]


def error_units(
    doc: Document, start: int, end: int, *, context: int = CONTEXT_LINES, base: int = 0
) -> tuple[list[Unit], set[int]]:
    """Lines matching error patterns (priority `base`) and their context (base+distance)."""
    hits = [i for i in range(start, end) if is_error_line(doc.lines[i])]
    best: dict[int, int] = {i: 0 for i in hits}
    for i in hits:
        for distance in range(1, context + 1):
            for j in (i - distance, i + distance):
                if start <= j < end and best.get(j, distance + 1) > distance:
                    best[j] = distance
    units = [Unit(i, i + 1, base + d, head_tail_order(i, start, end)) for i, d in sorted(best.items())]
    return units, set(best)


def filler_units(
    doc: Document, start: int, end: int, covered: Collection[int], priority: int = FILLER_PRIORITY
) -> list[Unit]:
    """Every line of [start, end) not in `covered`, as last-resort units (tail and head first)."""
    return lines_units(doc, [i for i in range(start, end) if i not in covered], priority, start, end)
