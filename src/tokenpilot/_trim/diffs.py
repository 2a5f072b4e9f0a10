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


MAX_FILES = 5_000  # files named in the digest; past this they are only counted
# A diff of a few files names them in its own headers, which the budget keeps first.
MIN_FILES_LISTED = 5


class Digest:
    """Every file of a diff with its added and removed lines, gathered line by line.

    >>> d = Digest()
    >>> for n in range(5):
    ...     for line in [f"diff --git a/{n}.py b/{n}.py", "@@ -1 +1,2 @@", "-a", "+b"]:
    ...         d.add(line)
    >>> d.notes()[:2]
    ['[5 files changed, +5 -5]', '0.py +1 -1']
    """

    def __init__(self) -> None:
        self.files: dict[str, list[int]] = {}
        self.more_files = 0
        self._current: list[int] | None = None
        self._in_hunk = False
        self._after_minus_header = False
        self.plus = self.minus = 0

    def _start(self, name: str) -> None:
        if name in self.files:
            self._current = self.files[name]
        elif len(self.files) < MAX_FILES:
            self._current = self.files[name] = [0, 0]
        else:
            self.more_files += 1
            self._current = None

    def add(self, line: str) -> None:
        header = self._after_minus_header
        self._after_minus_header = False
        if line.startswith("diff --git "):
            self._in_hunk = False
            self._start(line.rsplit(" b/", 1)[-1] if " b/" in line else line[len("diff --git ") :])
        elif line.startswith("+++ ") and header:
            self._in_hunk = False
            self.minus -= 1  # the `---` line before was a header, not a removed line
            if self._current is not None:
                self._current[1] -= 1
            name = line[4:].split("\t")[0]
            if name != "/dev/null" and (self._current is None or not self.files):
                self._start(name.removeprefix("b/"))
        elif line.startswith("--- ") and not self._in_hunk:
            name = line[4:].split("\t")[0]
            if not self.files or self._current is None:
                self._start(name.removeprefix("a/"))
        elif HUNK.match(line):
            self._in_hunk = True
        elif self._in_hunk and line[:1] == "+":
            self.plus += 1
            if self._current is not None:
                self._current[0] += 1
        elif self._in_hunk and line[:1] == "-":
            self._after_minus_header = line.startswith("--- ")
            self.minus += 1
            if self._current is not None:
                self._current[1] += 1

    def notes(self) -> list[str]:
        count = len(self.files) + self.more_files
        if count < MIN_FILES_LISTED:
            return []
        head = f"[{count:,} file{'s' * (count != 1)} changed, +{self.plus:,} -{self.minus:,}]"
        return [head, *(f"{name} +{p:,} -{m:,}" for name, (p, m) in self.files.items())]

    def rest_note(self, left_out: int) -> str:
        return f"[… {left_out + self.more_files:,} more files …]"
