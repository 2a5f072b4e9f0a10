"""Compiler and linter diagnostics (gcc/clang, tsc, rustc/cargo, mypy, ruff): every distinct
diagnostic with its code excerpt, repeats collapsed into the first with a count."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tokenpilot._trim._common import filler_units
from tokenpilot._trim._document import Document, Unit

# One head-line pattern per family; each names `sev` (error/warning/note), `msg`, maybe `loc`, `code`.
HEADS = (
    # gcc, clang, mypy: path:line[:col]: severity: message  [code]
    re.compile(
        r"^(?P<loc>[^\s:][^:]*:\d+(?::\d+)?): (?P<sev>fatal error|error|warning|note|remark): "
        r"(?P<msg>.*?)(?:\s+\[(?P<code>[\w-]+)\])?$"
    ),
    # tsc: path(line,col): error TS1234: message   |   path:line:col - error TS1234: message
    re.compile(r"^(?P<loc>\S+\(\d+,\d+\)): (?P<sev>error|warning) (?P<code>TS\d+): (?P<msg>.*)$"),
    re.compile(r"^(?P<loc>\S+:\d+:\d+) - (?P<sev>error|warning) (?P<code>TS\d+): (?P<msg>.*)$"),
    # ruff concise: path:line:col: CODE message
    re.compile(r"^(?P<loc>[^\s:][^:]*:\d+:\d+): (?P<code>[A-Z]+\d+) (?P<msg>.*)$"),
    # rustc / cargo: error[E0308]: message  (location on the next " --> " line)
    re.compile(r"^(?P<sev>error|warning)(?:\[(?P<code>E\d+)\])?: (?P<msg>.*)$"),
    # ruff full: CODE [*] message  (location on the next " --> " line)
    re.compile(r"^(?P<code>[A-Z]{1,4}\d{2,4}) (?P<msg>.*)$"),
)
ARROW = re.compile(r"^\s*--> (?P<loc>\S+)")
SUMMARY = re.compile(
    r"^(Found \d+ errors?\b|\d+ errors? generated|\d+ warnings? generated|\d+ warnings? and \d+ errors? "
    r"generated|error: aborting due to|error: could not compile|Success: no issues found|All checks passed"
    r"|Found \d+ errors? in \d+ files?|warning: `.*` \(.*\) generated \d+ warnings?)"
)
# Quoted names and numbers vary between repeats of one diagnostic ("unused variable 'v7'").
_VARYING = re.compile(r"‘[^’]*’|'[^']*'|\"[^\"]*\"|`[^`]*`|\b\d+\b")
CONTEXT_HEAD = re.compile(r"^\S.*: (In function|In member function|At top level|In file included from)")


@dataclass(frozen=True, slots=True)
class Diagnostic:
    start: int
    end: int
    severity: str  # error | warning | note
    key: str  # what repeats share: severity, code, message
    location: str


def _head(line: str) -> re.Match[str] | None:
    for pattern in HEADS:
        match = pattern.match(line)
        if match:
            return match
    return None


def find_diagnostics(doc: Document, start: int, end: int) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    i = start
    while i < end:
        match = _head(doc.lines[i])
        if match is None or SUMMARY.match(doc.lines[i]):
            i += 1
            continue
        groups = match.groupdict()
        block_end = i + 1
        # Excerpt, carets, arrows, help/note lines: until a blank line or the next head.
        while (
            block_end < end
            and doc.lines[block_end].strip()
            and _head(doc.lines[block_end]) is None
            and not SUMMARY.match(doc.lines[block_end])
            and not CONTEXT_HEAD.match(doc.lines[block_end])
        ):
            block_end += 1
        location = groups.get("loc") or ""
        if not location:
            arrow = next(
                (ARROW.match(doc.lines[j]) for j in range(i + 1, block_end) if ARROW.match(doc.lines[j])),
                None,
            )
            location = arrow.group("loc") if arrow else ""
        severity = (groups.get("sev") or "error").replace("fatal error", "error")
        message = _VARYING.sub("…", groups.get("msg") or "")
        key = f"{severity}|{groups.get('code') or ''}|{message}"
        found.append(Diagnostic(i, block_end, severity, key, location))
        i = block_end
    return found


def reduce(doc: Document, start: int, end: int) -> list[Unit]:
    """Errors first (head line, then excerpt), then warnings, then notes; repeats collapsed."""
    units: list[Unit] = []
    covered: set[int] = set()
    diagnostics = find_diagnostics(doc, start, end)
    repeats: dict[str, list[Diagnostic]] = {}
    for diagnostic in diagnostics:
        repeats.setdefault(diagnostic.key, []).append(diagnostic)
        covered.update(range(diagnostic.start, diagnostic.end))
    base_of = {"error": 0, "warning": 2, "note": 3, "remark": 3}
    for n, diagnostic in enumerate(diagnostics):
        group = repeats[diagnostic.key]
        if group[0] is not diagnostic:
            continue  # a repeat: counted on its first occurrence, its lines left out
        base = base_of.get(diagnostic.severity, 2)
        head_line = doc.lines[diagnostic.start]
        if len(group) > 1:
            others = [d.location for d in group[1:] if d.location]
            shown = ", ".join(others[:3]) + (", …" if len(others) > 3 else "")
            note = f"  [×{len(group)} in total" + (f"; also at {shown}" if shown else "") + "]"
            units.append(
                doc.condensed(
                    diagnostic.start,
                    diagnostic.start + 1,
                    head_line + note,
                    shown=[diagnostic.start],
                    priority=base,
                    order=n,
                )
            )
        else:
            units.append(Unit(diagnostic.start, diagnostic.start + 1, base, n))
        units += [Unit(j, j + 1, base + 1, n) for j in range(diagnostic.start + 1, diagnostic.end)]
    for i in range(start, end):
        if SUMMARY.match(doc.lines[i]):
            units.append(Unit(i, i + 1, 0, -1))
            covered.add(i)
        elif CONTEXT_HEAD.match(doc.lines[i]):
            units.append(Unit(i, i + 1, 4, i))
            covered.add(i)
    return units + filler_units(doc, start, end, covered, priority=5)
