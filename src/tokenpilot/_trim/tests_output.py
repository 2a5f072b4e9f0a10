"""pytest and unittest runs: each failure's assertion and last frames, the summary; progress dropped."""

from __future__ import annotations

import re

from tokenpilot._trim._common import filler_units
from tokenpilot._trim._document import Document, Unit
from tokenpilot._trim.tracebacks import traceback_units

SECTION = re.compile(r"^={3,} (.+?) ={3,}$")
SUBSECTION = re.compile(r"^-{3,} (.+?) -{3,}$")
FAILURE_HEAD = re.compile(r"^_{3,} (.+?) _{3,}$")
FRAME_SEPARATOR = re.compile(r"^(_ ){5,}_?\s*$")
LOCATION = re.compile(r"^\S+:\d+: ")
PROGRESS = re.compile(r"^\S+\.py [.sxXFE]+\s*(\[\s*\d+%\])?\s*$")
VERBOSE_PASS = re.compile(r"::\S.* (PASSED|SKIPPED|XFAIL|XPASS)\b")
VERBOSE_FAIL = re.compile(r"::\S.* (FAILED|ERROR)\b")
FINAL_SUMMARY = re.compile(
    r"^=+ .*\b(passed|failed|errors?|skipped|deselected|xfailed|xpassed|no tests ran)\b.* in [\d.]+s\b.*=+$"
)
SHORT_SUMMARY_ITEM = re.compile(r"^(FAILED|ERROR|XPASS|XFAIL|SKIPPED) ")

UNITTEST_HEAD = re.compile(r"^(FAIL|ERROR|UNEXPECTED SUCCESS): \S")
UNITTEST_RAN = re.compile(r"^Ran \d+ tests? in ")
UNITTEST_RESULT = re.compile(r"^(OK|FAILED)( \(.*\))?$")
UNITTEST_PROGRESS = re.compile(r"^[.sxFEu]+$")
UNITTEST_VERBOSE = re.compile(r" \.\.\. (ok|skipped.*|expected failure)$")
UNITTEST_VERBOSE_BAD = re.compile(r" \.\.\. (FAIL|ERROR|unexpected success)$")
UNITTEST_RULE = re.compile(r"^(=|-){20,}$")


def _failure_block(doc: Document, start: int, end: int, failure: int) -> list[Unit]:
    """One failure of the FAILURES / ERRORS section, `start` being its `____ name ____` line:
    name, `E` lines and failure location (1); the last frame's `>` line (2), the rest of the last
    frame (3); the test's own frame (4); middle frames and captured output (5)."""
    units = [Unit(start, start + 1, 1, failure)]
    captured = next((i for i in range(start + 1, end) if SUBSECTION.match(doc.lines[i])), end)
    separators = [i for i in range(start + 1, captured) if FRAME_SEPARATOR.match(doc.lines[i])]
    last_frame = separators[-1] + 1 if separators else start + 1
    locations = [i for i in range(start + 1, captured) if LOCATION.match(doc.lines[i])]
    for i in range(start + 1, captured):
        line = doc.lines[i]
        if line.startswith("E ") or (locations and i == locations[-1]):
            priority = 1
        elif i >= last_frame and line.startswith(">"):
            priority = 2
        elif i >= last_frame or i in locations:
            priority = 3
        elif i < (separators[0] if separators else captured):
            priority = 4
        else:
            priority = 5
        units.append(Unit(i, i + 1, priority, failure))
    units += [Unit(i, i + 1, 5, failure) for i in range(captured, end)]
    return units


def reduce_pytest(doc: Document, start: int, end: int) -> list[Unit]:
    units: list[Unit] = []
    covered: set[int] = set()
    section = ""
    i = start
    failure = 0
    while i < end:
        line = doc.lines[i]
        heading = SECTION.match(line)
        if heading:
            section = heading.group(1).strip().lower()
            final = bool(FINAL_SUMMARY.match(line))
            units.append(Unit(i, i + 1, 0 if final else 2, i))
            covered.add(i)
            i += 1
            continue
        if section in ("failures", "errors") and FAILURE_HEAD.match(line):
            block_end = i + 1
            while (
                block_end < end
                and not FAILURE_HEAD.match(doc.lines[block_end])
                and not SECTION.match(doc.lines[block_end])
            ):
                block_end += 1
            units += _failure_block(doc, i, block_end, failure)
            covered.update(range(i, block_end))
            failure += 1
            i = block_end
            continue
        if PROGRESS.match(line) or VERBOSE_PASS.search(line):
            covered.add(i)  # passing progress is dropped
            if any(mark in line.split(" ", 1)[1] for mark in "FE") and PROGRESS.match(line):
                units.append(Unit(i, i + 1, 5, i))
        elif VERBOSE_FAIL.search(line):
            units.append(Unit(i, i + 1, 4, i))
            covered.add(i)
        elif section == "short test summary info" and SHORT_SUMMARY_ITEM.match(line):
            units.append(Unit(i, i + 1, 0, i))
            covered.add(i)
        elif section == "warnings summary":
            units.append(Unit(i, i + 1, 5, i))
            covered.add(i)
        elif line.startswith("collected ") or " collected " in line:
            units.append(Unit(i, i + 1, 4, i))
            covered.add(i)
        i += 1
    # Tracebacks outside the failures section (collection errors, --tb=native) still matter.
    tb_units, tb_covered = traceback_units(doc, start, end, base=2)
    units += [u for u in tb_units if u.start not in covered]
    covered.update(tb_covered)
    return units + filler_units(doc, start, end, covered)


def reduce_unittest(doc: Document, start: int, end: int) -> list[Unit]:
    units: list[Unit] = []
    covered: set[int] = set()
    for i in range(start, end):
        line = doc.lines[i]
        if UNITTEST_HEAD.match(line) or UNITTEST_RAN.match(line) or UNITTEST_RESULT.match(line):
            units.append(Unit(i, i + 1, 0, i))
        elif UNITTEST_VERBOSE_BAD.search(line):
            units.append(Unit(i, i + 1, 3, i))
        elif UNITTEST_PROGRESS.match(line) or UNITTEST_VERBOSE.search(line) or UNITTEST_RULE.match(line):
            pass  # progress and rules are dropped
        else:
            continue
        covered.add(i)
    tb_units, tb_covered = traceback_units(doc, start, end)
    units += [u for u in tb_units if u.start not in covered]
    covered.update(tb_covered)
    return units + filler_units(doc, start, end, covered, priority=5)
