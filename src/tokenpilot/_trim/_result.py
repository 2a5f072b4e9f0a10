"""What a trim returns: the text, its exact size, and a report of what was left out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MODES = ("auto", "full", "head_tail", "errors_only", "smart")


@dataclass(frozen=True, slots=True)
class OmittedSpan:
    """One run of source lines not shown verbatim (1-based, inclusive), and their tokens."""

    first_line: int
    last_line: int
    tokens: int

    @property
    def lines(self) -> int:
        return self.last_line - self.first_line + 1


@dataclass(frozen=True, slots=True)
class Omitted:
    """What was cut: source lines not shown verbatim and the tokens they cost on their own.

    Tokens are the sum of each omitted line counted with its newline, so they add up across spans.
    """

    lines: int = 0
    tokens: int = 0
    spans: tuple[OmittedSpan, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class TrimResult:
    """A tool output fitted to its budget.

    `tokens` is the exact count of `text` with the model's tokenizer (an estimate when
    `exact` is False) and is always <= `budget`.
    """

    text: str
    tokens: int
    mode: str
    format: str
    omitted: Omitted
    spill_path: Path | None
    budget: int
    tokens_before: int
    lines_before: int
    tokenizer: str
    exact: bool

    @property
    def trimmed(self) -> bool:
        """True when anything was left out."""
        return self.omitted.lines > 0 or self.omitted.tokens > 0

    def report(self) -> dict[str, object]:
        """What the trim did, JSON-ready: sizes before and after, mode, format, what was left out.

        The text itself is `text`; `as_dict()` is this report with the text added.
        """
        return {
            "mode": self.mode,
            "format": self.format,
            "budget": self.budget,
            "tokens": self.tokens,
            "tokens_before": self.tokens_before,
            "lines_before": self.lines_before,
            "tokenizer": self.tokenizer,
            "exact": self.exact,
            "omitted": {
                "lines": self.omitted.lines,
                "tokens": self.omitted.tokens,
                "spans": [
                    {"first_line": s.first_line, "last_line": s.last_line, "tokens": s.tokens}
                    for s in self.omitted.spans
                ],
            },
            "spill_path": str(self.spill_path) if self.spill_path else None,
        }

    def as_dict(self) -> dict[str, object]:
        """The report with the text included (the name before `report()`)."""
        return {**self.report(), "text": self.text}
