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


def _depth(path: str) -> int:
    path = path.removeprefix("./").strip("/")
    return path.count("/") + 1 if path and path != "." else 0


def depths(doc: Document, start: int, end: int) -> list[int] | None:
    """Depth of every line of a listing (-1 for a summary line), or None if not a listing."""
    which = kind(doc.lines[start:end])
    if which is None:
        return None
    found: list[int] = []
    depth = 0
    for i in range(start, end):
        line = doc.lines[i]
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
            depth = _depth(line.strip()) - 1
        found.append(depth)
    return found


def _collapsed(doc: Document, start: int, end: int, depth_of: list[int], keep: int) -> list[Unit]:
    """Lines down to depth `keep` verbatim; each run of deeper lines as one counted line."""
    units: list[Unit] = []
    i = start
    while i < end:
        if depth_of[i - start] <= keep:
            units.append(Unit(i, i + 1, 0, i))
            i += 1
            continue
        j = i
        while j < end and depth_of[j - start] > keep:
            j += 1
        entries = sum(1 for k in range(i, j) if doc.lines[k].strip() and not LS_HEADER.match(doc.lines[k]))
        text = f"    [… {entries:,} deeper entries …]"
        units.append(doc.condensed(i, j, text, priority=0, order=i))
        i = j
    return units


def reduce(doc: Document, start: int, end: int, limit: int, tokenizer: Tokenizer) -> list[Unit]:
    """The deepest level whose listing (deeper runs collapsed into counts) fits `limit`; if even
    the top level does not fit, entries by depth (shallow first) in source order."""
    depth_of = depths(doc, start, end)
    if depth_of is None:
        return filler_units(doc, start, end, (), priority=MAX_DEPTH_PRIORITY)
    deepest = max(depth_of, default=0)
    for keep in range(deepest, -1, -1):
        units = _collapsed(doc, start, end, depth_of, keep)
        cost = sum(
            doc.line_tokens[u.start] if u.text is None else tokenizer.count(u.text + "\n") for u in units
        )
        if cost <= limit:
            return units
    return [
        Unit(i, i + 1, max(0, min(d, MAX_DEPTH_PRIORITY)), i)
        for i, d in zip(range(start, end), depth_of, strict=True)
    ]
