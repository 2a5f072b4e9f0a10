"""Python tracebacks: the exception, the last frame, the first frame; middle frames cut first."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tokenpilot._trim._common import filler_units
from tokenpilot._trim._document import Document, Unit

TRACEBACK_HEAD = re.compile(r"^\s*Traceback \(most recent call last\):\s*$")
FRAME = re.compile(r'^(\s*)File "[^"]*", line \d+')
CHAIN = re.compile(r"^\s*(During handling of the above exception|The above exception was the direct cause)")


@dataclass(frozen=True, slots=True)
class Traceback:
    """Line indexes of one traceback: its head, each frame's [start, end), the exception lines."""

    head: int
    frames: tuple[tuple[int, int], ...]
    exception: tuple[int, int]


def find_tracebacks(doc: Document, start: int, end: int) -> list[Traceback]:
    found: list[Traceback] = []
    i = start
    while i < end:
        if not TRACEBACK_HEAD.match(doc.lines[i]):
            i += 1
            continue
        head = i
        i += 1
        frames: list[tuple[int, int]] = []
        while i < end and FRAME.match(doc.lines[i]):
            frame_indent = len(FRAME.match(doc.lines[i]).group(1))  # type: ignore[union-attr]
            frame_start = i
            i += 1
            # Source line, carets and locals are indented deeper than the "File" line.
            while (
                i < end
                and not FRAME.match(doc.lines[i])
                and len(doc.lines[i]) - len(doc.lines[i].lstrip()) > frame_indent
            ):
                i += 1
            frames.append((frame_start, i))
            # Lines such as "[Previous line repeated 996 more times]" belong to the frame list.
            while i < end and doc.lines[i].strip().startswith("[Previous line repeated"):
                i += 1
        exc_start = i
        # The exception: its first line and any continuation until a blank line or a new block.
        if i < end:
            i += 1
            while (
                i < end
                and doc.lines[i].strip()
                and not TRACEBACK_HEAD.match(doc.lines[i])
                and not CHAIN.match(doc.lines[i])
                and doc.lines[i].startswith((" ", "\t"))
            ):
                i += 1
        found.append(Traceback(head, tuple(frames), (exc_start, i)))
    return found


def traceback_units(doc: Document, start: int, end: int, base: int = 0) -> tuple[list[Unit], set[int]]:
    """Units for every traceback in [start, end): exception (base), last frame (base+1), head and
    first frame (base+2), middle frames (base+3, nearest the end first)."""
    units: list[Unit] = []
    covered: set[int] = set()
    for tb in find_tracebacks(doc, start, end):
        order = tb.head
        units.append(Unit(tb.head, tb.head + 1, base + 2, order))
        covered.add(tb.head)
        exc_start, exc_end = tb.exception
        if exc_end > exc_start:
            units.append(Unit(exc_start, exc_start + 1, base, order))
            units += [Unit(j, j + 1, base + 1, order) for j in range(exc_start + 1, exc_end)]
            covered.update(range(exc_start, exc_end))
        count = len(tb.frames)
        for n, (frame_start, frame_end) in enumerate(tb.frames):
            if n == count - 1:
                priority = base + 1
            elif n == 0:
                priority = base + 2
            else:
                priority = base + 3
            units.append(Unit(frame_start, frame_end, priority, order + (count - n)))
            covered.update(range(frame_start, frame_end))
    return units, covered


def reduce(doc: Document, start: int, end: int) -> list[Unit]:
    """Tracebacks as above; chain lines kept; other lines last."""
    units, covered = traceback_units(doc, start, end)
    chain = [i for i in range(start, end) if CHAIN.match(doc.lines[i])]
    units += [Unit(i, i + 1, 2, i) for i in chain]
    covered.update(chain)
    return units + filler_units(doc, start, end, covered, priority=4)
