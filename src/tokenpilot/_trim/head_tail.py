"""`head_tail`: the first and last lines with one marker between; token-level cuts for huge lines."""

from __future__ import annotations

from tokenpilot._tokens import Tokenizer
from tokenpilot._trim._cut import prefix_to_tokens, suffix_to_tokens
from tokenpilot._trim._document import Document, Unit
from tokenpilot._trim._fit import Fitted, _Costs, fit_units, render
from tokenpilot._trim._markers import gap_marker


def head_tail_units(doc: Document, limit: int, tokenizer: Tokenizer, reserve: int = 0) -> list[Unit]:
    """Whole lines from both ends, the side with fewer tokens growing first, each side stopping
    at its first line that does not fit."""
    costs = _Costs(doc, tokenizer)
    budget = limit - reserve - costs.marker(0, len(doc))
    head, tail = 0, len(doc)  # lines [0, head) and [tail, len) are kept
    head_tokens = tail_tokens = 0
    head_open = tail_open = True
    while head < tail and (head_open or tail_open):
        grow_head = head_open and (not tail_open or head_tokens <= tail_tokens)
        index = head if grow_head else tail - 1
        cost = doc.line_tokens[index]
        if head_tokens + tail_tokens + cost > budget:
            if grow_head:
                head_open = False
            else:
                tail_open = False
            continue
        if grow_head:
            head, head_tokens = head + 1, head_tokens + cost
        else:
            tail, tail_tokens = tail - 1, tail_tokens + cost
    units = [Unit(i, i + 1, 0) for i in range(head)]
    units += [Unit(i, i + 1, 0) for i in range(tail, len(doc))]
    return units


def head_tail(doc: Document, limit: int, tokenizer: Tokenizer, trailer: str | None = None) -> Fitted:
    """Fit `doc` by keeping its head and tail; if no whole line fits, cut inside the end lines."""
    reserve = tokenizer.count(trailer + "\n") if trailer else 0
    units = head_tail_units(doc, limit, tokenizer, reserve)
    fitted = fit_units(doc, units, limit, tokenizer, trailer)
    if fitted.kept_units or not len(doc):
        return fitted
    return _cut_inside(doc, limit, tokenizer, trailer) or fitted


def _cut_inside(doc: Document, limit: int, tokenizer: Tokenizer, trailer: str | None) -> Fitted | None:
    """Head of the first line and tail of the last, around a marker for everything in between."""
    marker = gap_marker(doc.total_lines, doc.total_tokens)
    for note in (trailer, None) if trailer else (None,):
        fixed = tokenizer.count(marker + "\n") + (tokenizer.count(note + "\n") if note else 0)
        room = limit - fixed - 2
        if room < 8:  # too little for a useful piece on each side
            continue
        head = prefix_to_tokens(doc.lines[0], room // 2, tokenizer)
        tail = suffix_to_tokens(doc.lines[-1], room - tokenizer.count(head), tokenizer)
        pieces = [p for p in (head, marker, tail, note) if p]
        text = "\n".join(pieces)
        tokens = tokenizer.count(text)
        if tokens <= limit:
            _, omitted = render(doc, [])
            return Fitted(text, tokens, omitted, 0)
    return None
