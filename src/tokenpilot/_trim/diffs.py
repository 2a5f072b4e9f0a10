"""Unified diffs: file headers, then each hunk's header with its first changed lines (in source
order), then the other changed lines; context lines are cut first, farthest from a change first."""

from __future__ import annotations

import bisect
import re

from tokenpilot._trim._common import filler_units
from tokenpilot._trim._document import Document, Unit

FILE_HEADER = re.compile(
    r"^(diff --git |diff -|--- |\+\+\+ |index [0-9a-f]|new file mode|deleted file mode|similarity index"
    r"|rename from|rename to|Binary files)"
)
FIRST_CHANGES = 4
HUNK = re.compile(r"^@@ .* @@")


def looks_like_diff(lines: list[str]) -> bool:
    head = lines[:200]
    has_files = any(line.startswith(("diff --git ", "--- ")) for line in head)
    return has_files and any(HUNK.match(line) for line in lines[:2000])


def _starts_file(doc: Document, i: int, end: int) -> bool:
    """Inside a hunk, only `diff …` or a `---` line followed by `+++` starts a new file."""
    line = doc.lines[i]
    if line.startswith("diff "):
        return True
    return line.startswith("--- ") and i + 1 < end and doc.lines[i + 1].startswith("+++ ")


def reduce(doc: Document, start: int, end: int) -> list[Unit]:
    units: list[Unit] = []
    covered: set[int] = set()
    in_hunk = False
    hunk_start = start
    hunk_rank = 0  # position of a line within its hunk: every hunk's first changes come first
    changes: list[int] = []
    context: list[int] = []
    for i in range(start, end):
        line = doc.lines[i]
        if HUNK.match(line):
            units.append(Unit(i, i + 1, 1, i))
            in_hunk, hunk_rank, hunk_start = True, 0, i
        elif FILE_HEADER.match(line) and (not in_hunk or _starts_file(doc, i, end)):
            units.append(Unit(i, i + 1, 0, i))
            in_hunk = False
        elif in_hunk and line[:1] in ("+", "-"):
            hunk_rank += 1
            # A hunk's first changes rank with its header, so hunks come whole in source order.
            if hunk_rank <= FIRST_CHANGES:
                units.append(Unit(i, i + 1, 1, hunk_start))
            else:
                units.append(Unit(i, i + 1, 2, hunk_rank))
            changes.append(i)
        elif in_hunk and (line[:1] in (" ", "\\") or line == ""):
            context.append(i)
        else:
            in_hunk = False
            continue
        covered.add(i)
    # Context ranks by its distance to the nearest change: the closest lines go last.
    change_set = sorted(changes)
    for i in context:
        at = bisect.bisect_left(change_set, i)
        near = [abs(change_set[j] - i) for j in (at - 1, at) if 0 <= j < len(change_set)]
        distance = min(near) if near else 99
        units.append(Unit(i, i + 1, 3 + min(distance, 3), i))
    return units + filler_units(doc, start, end, covered, priority=6)
