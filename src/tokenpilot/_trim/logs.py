"""Logs: runs of repeated and near-duplicate lines collapsed with counts; ERROR and WARN kept."""

from __future__ import annotations

import re

from tokenpilot._trim._document import Document, Unit, head_tail_order
from tokenpilot._trim._markers import repeat_marker
from tokenpilot._trim._patterns import is_error_line, is_warning_line

TIMESTAMP = re.compile(
    r"^\[?(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}([.,]\d+)?)?(Z|[+-]\d{2}:?\d{2})?"
    r"|[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}|\d{2}:\d{2}:\d{2}([.,]\d+)?)\]?"
)
LEVEL = re.compile(r"\b(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|CRITICAL|FATAL|SEVERE)\b")
_VARIABLE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|0x[0-9a-fA-F]+|\b[0-9a-f]{12,}\b|\d+(\.\d+)*"
)


def shape(line: str) -> str:
    """A line with its timestamp dropped and numbers, ids and hashes blanked: near-duplicates
    share a shape."""
    return _VARIABLE.sub("#", TIMESTAMP.sub("", line)).strip()


def looks_like_log(lines: list[str]) -> bool:
    sample = [line for line in lines[:400] if line.strip()]
    if len(sample) < 5:
        return False
    stamped = sum(1 for line in sample if TIMESTAMP.match(line) or LEVEL.search(line[:60]))
    return stamped >= 0.5 * len(sample)


def _priority(line: str) -> int:
    level = LEVEL.search(line[:80])
    name = level.group(1) if level else ""
    if name in ("ERROR", "CRITICAL", "FATAL", "SEVERE") or (not name and is_error_line(line)):
        return 0
    if name in ("WARN", "WARNING") or (not name and is_warning_line(line)):
        return 1
    return 3


def reduce(doc: Document, start: int, end: int) -> list[Unit]:
    """One unit per run of lines of one shape: its first line, then `[… ×N similar lines …]`.
    Indented lines after an error (stack traces) share its priority + 1; shapes seen before
    rank below first sightings."""
    units: list[Unit] = []
    seen: set[str] = set()
    i = start
    last_priority = 3
    while i < end:
        line = doc.lines[i]
        key = shape(line)
        run_end = i + 1
        while run_end < end and doc.follows(run_end) and shape(doc.lines[run_end]) == key:
            run_end += 1
        if line[:1] in (" ", "\t") and last_priority <= 1:
            priority = last_priority + 1
        else:
            priority = _priority(line)
            last_priority = priority
        if key in seen and priority >= 3:
            priority = 5
        seen.add(key)
        order = head_tail_order(i, start, end)
        if run_end - i > 1:
            text = line + "\n" + repeat_marker(run_end - i - 1)
            units.append(doc.condensed(i, run_end, text, shown=[i], priority=priority, order=order))
        else:
            units.append(Unit(i, i + 1, priority, order))
        i = run_end
    return units
