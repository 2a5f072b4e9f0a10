"""Choosing units by priority until the budget is full, and rendering them with gap markers.

Costs are planned from per-line counts, then the rendered text is counted exactly; if joining
changed the count, the least important units are dropped until it fits. The final count is what
the guarantee rests on, never the plan.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from tokenpilot._tokens import Tokenizer
from tokenpilot._trim._cut import prefix_to_tokens
from tokenpilot._trim._document import Document, Unit
from tokenpilot._trim._markers import gap_marker
from tokenpilot._trim._result import Omitted, OmittedSpan


@dataclass(frozen=True, slots=True)
class Fitted:
    """A rendered selection: its text, exact token count, what it left out, how many units it kept."""

    text: str
    tokens: int
    omitted: Omitted
    kept_units: int


class _Costs:
    def __init__(self, doc: Document, tokenizer: Tokenizer) -> None:
        self.doc = doc
        self.tokenizer = tokenizer
        self._markers: dict[tuple[int, int], int] = {}

    def marker(self, start: int, end: int) -> int:
        """Tokens of the marker (and its newline) for the gap between held lines, 0 if none."""
        lines, tokens = self.doc.gap(start, end)
        if lines <= 0:
            return 0
        key = (lines, tokens)
        cost = self._markers.get(key)
        if cost is None:
            cost = self.tokenizer.count(gap_marker(lines, tokens) + "\n")
            self._markers[key] = cost
        return cost

    def unit(self, unit: Unit) -> int:
        if unit.text is None:
            return self.doc.span_tokens(unit.start, unit.end)
        return self.tokenizer.count(unit.text + "\n")


def render(doc: Document, units: Sequence[Unit], trailer: str | None = None) -> tuple[str, Omitted]:
    """Units (non-overlapping) in source order with a marker for every gap, then `trailer`."""
    ordered = sorted(units, key=lambda u: (u.start, u.end))
    pieces: list[str] = []
    spans: list[OmittedSpan] = []
    hidden_lines = hidden_tokens = 0

    def gap(start: int, end: int) -> None:
        lines, tokens = doc.gap(start, end)
        if lines > 0:
            pieces.append(gap_marker(lines, tokens))
            first = doc.source_line[start] + 1
            spans.append(OmittedSpan(first, first + lines - 1, tokens))

    position = 0
    for unit in ordered:
        gap(position, unit.start)
        if unit.text is not None:
            pieces.append(unit.text)
        else:
            for i in range(unit.start, unit.end):
                if i > unit.start:
                    gap(i, i)  # a sketch of a stream may hold non-adjacent lines inside a unit
                pieces.append(doc.lines[i])
        hidden_lines += unit.hidden_lines
        hidden_tokens += unit.hidden_tokens
        position = max(position, unit.end)
    gap(position, len(doc))
    if trailer:
        pieces.append(trailer)
    omitted = Omitted(
        lines=sum(s.lines for s in spans) + hidden_lines,
        tokens=sum(s.tokens for s in spans) + hidden_tokens,
        spans=tuple(spans),
    )
    return "\n".join(pieces), omitted


def fit_units(
    doc: Document,
    units: Sequence[Unit],
    limit: int,
    tokenizer: Tokenizer,
    trailer: str | None = None,
) -> Fitted:
    """The most important units whose rendering (markers and trailer included) counts <= `limit`."""
    by_position = sorted(range(len(units)), key=lambda i: (units[i].start, units[i].end, i))
    rank_of = {unit_index: rank for rank, unit_index in enumerate(by_position)}
    costs = _Costs(doc, tokenizer)
    fixed = tokenizer.count(trailer + "\n") if trailer else 0
    total = fixed + costs.marker(0, len(doc))
    chosen: list[int] = []  # ranks (source order) of chosen units, sorted
    candidates = sorted(range(len(units)), key=lambda i: (units[i].priority, units[i].order, i))
    for unit_index in candidates:
        unit = units[unit_index]
        rank = rank_of[unit_index]
        at = bisect.bisect_left(chosen, rank)
        left = units[by_position[chosen[at - 1]]].end if at > 0 else 0
        right = units[by_position[chosen[at]]].start if at < len(chosen) else len(doc)
        if unit.start < left or unit.end > right:
            continue  # overlaps a chosen unit; reducers should not propose this
        extra = (
            costs.unit(unit)
            + costs.marker(left, unit.start)
            + costs.marker(unit.end, right)
            - costs.marker(left, right)
        )
        if total + extra <= limit:
            chosen.insert(at, rank)
            total += extra
    kept = [units[by_position[r]] for r in chosen]
    return _settle(doc, kept + _cheap_gaps(doc, kept, costs), limit, tokenizer, trailer)


def _cheap_gaps(doc: Document, kept: list[Unit], costs: _Costs) -> list[Unit]:
    """Gaps whose lines cost no more than their marker: showing them is free and says more."""
    filled: list[Unit] = []
    position = 0
    for unit in [*kept, Unit(len(doc), len(doc), 0)]:
        start, end = position, unit.start
        lines, _ = doc.gap(start, end)
        if 0 < lines == end - start and doc.span_tokens(start, end) <= costs.marker(start, end):
            filled.append(Unit(start, end, 99, 0))
        position = max(position, unit.end)
    return filled


def _settle(doc: Document, kept: list[Unit], limit: int, tokenizer: Tokenizer, trailer: str | None) -> Fitted:
    """Render and count exactly; drop the least important units while over the limit."""
    while True:
        text, omitted = render(doc, kept, trailer)
        tokens = tokenizer.count(text)
        if tokens <= limit:
            return Fitted(text, tokens, omitted, len(kept))
        if not kept:
            break
        # Drop enough of the least important units to cover the excess, then re-count.
        excess = tokens - limit
        costs = _Costs(doc, tokenizer)
        worst_first = sorted(kept, key=lambda u: (u.priority, u.order), reverse=True)
        dropped: set[int] = set()
        freed = 0
        for unit in worst_first:
            dropped.add(id(unit))
            freed += costs.unit(unit)
            if freed >= excess:
                break
        kept = [u for u in kept if id(u) not in dropped]
    if trailer:
        return _settle(doc, [], limit, tokenizer, None)
    text = prefix_to_tokens(text, limit, tokenizer)
    _, omitted = render(doc, [])
    return Fitted(text, tokenizer.count(text), omitted, 0)
