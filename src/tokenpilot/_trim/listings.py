"""Directory listings (`ls -R`, `find`, `tree`): shallow entries first, deep directories collapsed
into a count of what they hold."""

from __future__ import annotations

import re

from tokenpilot._tokens import Tokenizer
from tokenpilot._trim._common import filler_units
from tokenpilot._trim._document import Document, Unit

LS_HEADER = re.compile(r"^(?P<dir>\S.*):$")
TREE_BRANCH = re.compile(r"^(?P<prefix>(?:│\s{3}|\|\s{3}|\s{4})*)(├──|└──|\|--|`--) ")
TREE_SUMMARY = re.compile(r"^\d+ director(y|ies)(, \d+ files?)?$")
MAX_DEPTH_PRIORITY = 9


def kind(lines: list[str]) -> str | None:
    """'tree', 'ls-R', 'find' or None."""
    sample = [line for line in lines[:500] if line.strip()]
    if len(sample) < 3:
        return None
    if sum(1 for line in sample if TREE_BRANCH.match(line)) >= 0.6 * len(sample):
        return "tree"
    headers = [line for line in sample if LS_HEADER.match(line)]
    if headers and (sample[0] == ".:" or LS_HEADER.match(sample[0])) and len(headers) >= 2:
        return "ls-R"
    pathlike = sum(1 for line in sample if "/" in line and " " not in line.strip() and ":" not in line)
    if pathlike >= 0.8 * len(sample):
        return "find"
    return None


# The fitter adds units in source order and pays for one gap marker until the last one lands.
FIT_SLACK = 16
MIN_PARTIAL = 4  # pieces a directory shown in part must show (an entry and its count: 2)
RUN_DEPTH = 1 << 30  # a held line that stands for a run of deeper entries (a streamed listing)


def _depth(path: str) -> int:
    path = path.removeprefix("./").strip("/")
    return path.count("/") + 1 if path and path != "." else 0


def find_depth(line: str) -> int:
    """Depth of a `find` line: `/usr` 0, `/usr/bin` 1; `.` -1, `./a` 0."""
    return _depth(line.strip()) - 1


def is_run(doc: Document, i: int) -> bool:
    """True when held line i stands for several source lines (deeper entries a stream did not hold)."""
    return doc.source_end[i] - doc.source_line[i] > 1


def run_text(entries: int, what: str = "deeper") -> str:
    return f"    [… {entries:,} {what} entr{'ies' if entries != 1 else 'y'} …]"


def depths(doc: Document, start: int, end: int) -> list[int] | None:
    """Depth of every line of a listing (-1 for a summary line), or None if not a listing."""
    which = kind([doc.lines[i] for i in range(start, end) if not is_run(doc, i)])
    if which is None:
        return None
    found: list[int] = []
    depth = 0
    for i in range(start, end):
        line = doc.lines[i]
        if is_run(doc, i):
            found.append(RUN_DEPTH)
            continue
        if which == "tree":
            branch = TREE_BRANCH.match(line)
            if TREE_SUMMARY.match(line.strip()):
                depth = -1
            elif branch:
                depth = len(branch.group("prefix")) // 4 + 1
            elif i == start:
                depth = 0
        elif which == "ls-R":
            header = LS_HEADER.match(line)
            if header:
                depth = _depth(header.group("dir"))
            elif not line.strip():
                depth = max(depth, 0)
        else:
            depth = find_depth(line)
        found.append(depth)
    return found


def _entries(doc: Document, i: int, j: int) -> int:
    """Entries in held lines [i, j): every source line the span covers, less headers and blanks."""
    not_entries = sum(
        1
        for k in range(i, j)
        if not is_run(doc, k) and (not doc.lines[k].strip() or LS_HEADER.match(doc.lines[k]))
    )
    return doc.source_end[j - 1] - doc.source_line[i] - not_entries


class _Listing:
    """A listing as verbatim lines and collapsed runs, expanded breadth first while the budget lasts."""

    def __init__(self, doc: Document, depth_of: list[int], start: int, tokenizer: Tokenizer) -> None:
        self.doc, self.depth_of, self.start, self.tokenizer = doc, depth_of, start, tokenizer

    def depth(self, i: int) -> int:
        return self.depth_of[i - self.start]

    def run_cost(self, i: int, j: int) -> int:
        return self.tokenizer.count(run_text(_entries(self.doc, i, j)) + "\n")

    def pieces(self, i: int, j: int, level: int) -> list[tuple[int, int]]:
        """Lines [i, j) at depth <= `level` one by one, each run of deeper lines as one (start, end)."""
        found: list[tuple[int, int]] = []
        k = i
        while k < j:
            if self.depth(k) <= level:
                found.append((k, k + 1))
                k += 1
                continue
            run_end = k
            while run_end < j and self.depth(run_end) > level:
                run_end += 1
            found.append((k, run_end))
            k = run_end
        return found

    def cost(self, piece: tuple[int, int], level: int) -> int:
        i, j = piece
        if j - i == 1 and self.depth(i) <= level:
            return self.doc.line_tokens[i]
        return self.run_cost(i, j)


def _prefix(
    listing: _Listing, parts: list[tuple[int, int]], level: int, room: int
) -> tuple[list[tuple[int, int]], int]:
    """The first `parts` that fit `room` together with a count of the rest, and what they cost."""
    kept: list[tuple[int, int]] = []
    used = 0
    end = parts[-1][1]
    for part in parts:
        cost = listing.cost(part, level)
        after = listing.run_cost(part[1], end) if part[1] < end else 0
        if used + cost + after > room:
            break
        kept.append(part)
        used += cost
    if len(kept) < MIN_PARTIAL:
        return [], 0  # one entry and "N more" says less than the whole directory's count
    return kept, used + (listing.run_cost(kept[-1][1], end) if kept[-1][1] < end else 0)


def reduce(doc: Document, start: int, end: int, limit: int, tokenizer: Tokenizer) -> list[Unit]:
    """Shallow entries first, each run of deeper ones collapsed into its true count; runs are then
    expanded one level at a time, shallow and early ones first, while the listing fits `limit`.
    If even the top level does not fit, entries by depth (shallow first) in source order."""
    depth_of = depths(doc, start, end)
    if depth_of is None or start == end:
        return filler_units(doc, start, end, (), priority=MAX_DEPTH_PRIORITY)
    listing = _Listing(doc, depth_of, start, tokenizer)
    planned = limit - FIT_SLACK
    for _ in range(4):  # lines counted one by one are not the joined text: re-plan on the exact count
        units = _plan(listing, depth_of, start, end, planned)
        joined = "\n".join(doc.lines[u.start] if u.text is None else u.text for u in units)
        excess = tokenizer.count(joined + "\n") - limit
        if excess <= 0:
            break
        planned -= excess + 2
    return units


def _plan(listing: _Listing, depth_of: list[int], start: int, end: int, limit: int) -> list[Unit]:
    doc = listing.doc
    top = min(depth_of)
    chosen: dict[tuple[int, int], int] = {}  # piece -> the level it was cut at
    rest: dict[tuple[int, int], int] = {}  # the part of a run left after its first entries
    total = 0
    for piece in listing.pieces(start, end, top):
        chosen[piece] = top
        total += listing.cost(piece, top)
    if total > limit:
        return [
            Unit(i, i + 1, max(0, min(d, MAX_DEPTH_PRIORITY)), i)
            for i, d in zip(range(start, end), depth_of, strict=True)
        ]
    queue = sorted(
        (level, piece)
        for piece, level in chosen.items()
        if piece[1] - piece[0] > 1 or depth_of[piece[0] - start] > level
    )
    at = 0
    while at < len(queue):
        level, run = queue[at]
        at += 1
        if depth_of[run[0] - start] == RUN_DEPTH and run[1] - run[0] == 1:
            continue  # a run a stream did not hold: nothing to expand it into
        deeper = min(depth_of[k - start] for k in range(*run))
        if deeper == RUN_DEPTH:
            continue
        parts = listing.pieces(run[0], run[1], deeper)
        extra = sum(listing.cost(p, deeper) for p in parts) - listing.cost(run, level)
        if total + extra > limit:
            # Not all of it fits: its first entries, then the rest as one count.
            room = limit - total + listing.cost(run, level)
            parts, cost = _prefix(listing, parts, deeper, room)
            if not parts:
                continue
            extra = cost - listing.cost(run, level)
            if parts[-1][1] < run[1]:
                rest[(parts[-1][1], run[1])] = level
        total += extra
        del chosen[run]
        for part in parts:
            chosen[part] = deeper
            if part[1] - part[0] > 1 or depth_of[part[0] - start] > deeper:
                queue.append((deeper, part))
        queue[at:] = sorted(queue[at:])
    units: list[Unit] = [
        doc.condensed(i, j, run_text(_entries(doc, i, j), "more"), priority=0, order=i) for (i, j) in rest
    ]
    for (i, j), level in sorted(chosen.items()):
        # Deeper detail is dropped first if the exact count says the plan was a little over.
        priority = max(0, min(level - top, MAX_DEPTH_PRIORITY - 1))
        if j - i == 1 and depth_of[i - start] <= level:
            units.append(Unit(i, i + 1, priority, i))
        else:
            units.append(doc.condensed(i, j, run_text(_entries(doc, i, j)), priority=priority, order=i))
    return sorted(units, key=lambda u: (u.start, u.end))
