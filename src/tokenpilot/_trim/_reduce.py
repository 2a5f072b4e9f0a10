"""Dispatch: the units each mode and format proposes for a section of a document."""

from __future__ import annotations

from collections.abc import Callable

from tokenpilot._tokens import Tokenizer
from tokenpilot._trim import (
    diagnostics,
    diffs,
    errors_only,
    gitlog,
    json_output,
    listings,
    logs,
    tests_output,
    tracebacks,
)
from tokenpilot._trim._digest import Digest
from tokenpilot._trim._document import Document, Unit

Reducer = Callable[[Document, int, int], list[Unit]]

SMART: dict[str, Reducer] = {
    "pytest": tests_output.reduce_pytest,
    "unittest": tests_output.reduce_unittest,
    "traceback": tracebacks.reduce,
    "diagnostics": diagnostics.reduce,
    "log": logs.reduce,
    "diff": diffs.reduce,
    "gitlog": gitlog.reduce,
    "text": errors_only.reduce_text,
}


def new_digest(fmt: str) -> Digest | None:
    """The digest a format gathers over every line, if it has one."""
    if fmt == "gitlog":
        return gitlog.Digest()
    if fmt == "diff":
        return diffs.Digest()
    return None


def note_units(start: int, notes: tuple[str, ...]) -> list[Unit]:
    """Notes shown before the section's first line, before anything else is kept."""
    return [Unit(start, start, -1, n, text=note) for n, note in enumerate(notes)]


def section_units(
    doc: Document, start: int, end: int, mode: str, fmt: str, limit: int, tokenizer: Tokenizer
) -> list[Unit]:
    """Units for lines [start, end) under `mode` ('errors_only' or 'smart') and format `fmt`."""
    if mode == "errors_only":
        return errors_only.reduce(doc, start, end)
    if fmt == "json":
        units = json_output.reduce(doc, start, end, limit, tokenizer)
        if units is not None:
            return units
        fmt = "text"
    if fmt == "listing":
        return listings.reduce(doc, start, end, limit, tokenizer)
    return SMART.get(fmt, errors_only.reduce_text)(doc, start, end)
