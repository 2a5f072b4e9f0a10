"""`errors_only`: lines that match error / failure patterns, with a little context."""

from __future__ import annotations

from tokenpilot._trim._common import error_units, filler_units
from tokenpilot._trim._document import Document, Unit


def reduce(doc: Document, start: int, end: int) -> list[Unit]:
    """Error lines (priority 0) and up to two lines of context each; nothing else."""
    units, _ = error_units(doc, start, end)
    return units


def reduce_text(doc: Document, start: int, end: int) -> list[Unit]:
    """`smart` for output of no known format: error lines and context first, then head and tail."""
    units, covered = error_units(doc, start, end)
    return units + filler_units(doc, start, end, covered, priority=4)
