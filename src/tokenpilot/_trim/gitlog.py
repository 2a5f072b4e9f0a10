"""`git log` (with or without `-p`): one line per commit (hash, date, author, subject), newest
first, then the newest commits' messages and diffs as the budget allows."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime

from tokenpilot._trim import diffs
from tokenpilot._trim._document import Document, Unit

COMMIT = re.compile(r"^commit (?P<hash>[0-9a-f]{7,64})\b")
MAX_COMMITS = 5_000  # commits named in the digest; past this they are only counted
# Each commit's lines rank after every line of the commit before it: newest first.
COMMIT_PRIORITY_STEP = 10


def looks_like_git_log(lines: list[str]) -> bool:
    first = next((line for line in lines[:50] if line.strip()), "")
    return COMMIT.match(first) is not None and any(
        line.startswith(("Author:", "Date:")) for line in lines[:10]
    )


def _short_date(raw: str) -> str:
    """`Tue Dec 1 09:36:11 2026 +0000` (git's default) -> `2026-12-01`; other formats as given."""
    try:
        return datetime.strptime(raw.strip(), "%a %b %d %H:%M:%S %Y %z").date().isoformat()
    except ValueError:
        return raw.strip()


class Digest:
    """One line per commit, gathered line by line.

    >>> d = Digest()
    >>> for line in ["commit 0a0d5342f1", "Author: Ada <ada@x>", "Date:   Tue Dec 1 09:36:11 2026 +0000",
    ...              "", "    Fix the parser", "", "    Details."]:
    ...     d.add(line)
    >>> d.notes()
    ['[1 commit, newest first]', '0a0d5342f1 2026-12-01 Ada  Fix the parser']
    """

    def __init__(self) -> None:
        self.commits: list[list[str]] = []  # [hash, date, author, subject]
        self.more = 0
        self._current: list[str] | None = None
        self._in_message = False

    def add(self, line: str) -> None:
        match = COMMIT.match(line)
        if match:
            self._in_message = False
            if len(self.commits) < MAX_COMMITS:
                self._current = [match.group("hash")[:10], "", "", ""]
                self.commits.append(self._current)
            else:
                self.more += 1
                self._current = None
            return
        current = self._current
        if current is None or current[3]:
            return
        if line.startswith("Author:") and not self._in_message:
            current[2] = line[len("Author:") :].split("<")[0].strip()
        elif line.startswith("Date:") and not self._in_message:
            current[1] = _short_date(line[len("Date:") :])
        elif line.startswith("    ") and line.strip():
            current[3] = line.strip()
        elif not line.strip():
            self._in_message = True

    def notes(self) -> list[str]:
        count = len(self.commits) + self.more
        if not count:
            return []
        head = f"[{count:,} commit{'s' * (count != 1)}, newest first]"
        return [head, *(" ".join(part for part in c[:3] if part) + "  " + c[3] for c in self.commits)]

    def rest_note(self, left_out: int) -> str:
        return f"[… {left_out + self.more:,} older commits …]"


def reduce(doc: Document, start: int, end: int) -> list[Unit]:
    """Each commit's lines (header, message, diff as the diff reducer ranks them), newest first."""
    starts = [i for i in range(start, end) if COMMIT.match(doc.lines[i])] or [start]
    if starts[0] != start:
        starts.insert(0, start)
    units: list[Unit] = []
    for n, (a, b) in enumerate(zip(starts, [*starts[1:], end], strict=True)):
        offset = COMMIT_PRIORITY_STEP * (n + 1)
        body = next((i for i in range(a, b) if doc.lines[i].startswith("diff ")), b)
        units += [
            dataclasses.replace(u, priority=offset + (0 if u.start < body else u.priority + 1))
            for u in diffs.reduce(doc, a, b)
        ]
    return units
