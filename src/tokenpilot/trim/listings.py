"""Directory listings (`ls -R`, `find`, `tree`): shallow entries first, deep directories collapsed
into a count of what they hold."""

from __future__ import annotations

import re

from tokenpilot.trim._common import filler_units
from tokenpilot.trim._document import Document, Unit

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


def reduce(doc: Document, start: int, end: int) -> list[Unit]:
    """Priority = depth, so every shallow entry is kept before any deeper one; in source order."""
    lines = doc.lines[start:end]
    which = kind(lines)
    units: list[Unit] = []
    covered: set[int] = set()
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
        elif which == "find":
            depth = _depth(line.strip()) - 1
        else:
            continue
        units.append(Unit(i, i + 1, max(0, min(depth, MAX_DEPTH_PRIORITY)), i))
        covered.add(i)
    return units + filler_units(doc, start, end, covered, priority=MAX_DEPTH_PRIORITY + 1)
