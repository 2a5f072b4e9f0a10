"""The trimmed text as held lines with their source positions, and the units reducers propose.

A document holds lines of the source output. Usually it holds all of them; a streamed input holds
only a sketch (head, notable lines, tail), and `source_line` / `tokens_before` still say where each
held line sits in the source and how many source tokens precede it, so markers give true counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate

from tokenpilot._tokens import Tokenizer
from tokenpilot._tokens._tokenizer import TiktokenTokenizer


@dataclass(frozen=True, slots=True)
class Unit:
    """A span of held lines [start, end) a reducer proposes to keep, and how much it matters.

    `priority` 0 is kept first; `order` breaks ties (lower first). `text` None shows the lines
    verbatim; otherwise `text` replaces them (a condensed form) and `hidden_lines` /
    `hidden_tokens` say how much of the span it does not show verbatim. A zero-width unit
    (start == end) is a note inserted between lines.
    """

    start: int
    end: int
    priority: int
    order: int = 0
    text: str | None = None
    hidden_lines: int = 0
    hidden_tokens: int = 0


@dataclass(slots=True)
class Document:
    """Held lines plus their positions in the source (see module docstring)."""

    lines: list[str]
    line_tokens: list[int]
    source_line: list[int]  # len(lines) + 1 entries; the last is the source's line count
    tokens_before: list[int]  # len(lines) + 1 entries; the last is the source's token count
    synthetic: frozenset[int] = field(default_factory=frozenset)  # held lines not in the source
    source_end: list[int] = field(default_factory=list)  # source position just after held line i
    tokens_end: list[int] = field(default_factory=list)  # source tokens up to the end of line i

    def __post_init__(self) -> None:
        if not self.source_end:
            self.source_end = [
                self.source_line[i] + (0 if i in self.synthetic else 1) for i in range(len(self.lines))
            ]
            self.tokens_end = [
                self.tokens_before[i] + (0 if i in self.synthetic else self.line_tokens[i])
                for i in range(len(self.lines))
            ]

    @classmethod
    def from_lines(
        cls, lines: list[str], tokenizer: Tokenizer, synthetic: frozenset[int] = frozenset()
    ) -> Document:
        counts = count_lines(lines, tokenizer)
        source_counts = [0 if i in synthetic else c for i, c in enumerate(counts)]
        positions = list(accumulate((0 if i in synthetic else 1 for i in range(len(lines))), initial=0))
        return cls(
            lines=lines,
            line_tokens=counts,
            source_line=positions,
            tokens_before=list(accumulate(source_counts, initial=0)),
            synthetic=synthetic,
        )

    def __len__(self) -> int:
        return len(self.lines)

    @property
    def total_lines(self) -> int:
        return self.source_line[-1]

    @property
    def total_tokens(self) -> int:
        return self.tokens_before[-1]

    def gap(self, start: int, end: int) -> tuple[int, int]:
        """Source lines and tokens after held line start-1 and before held line `end`."""
        after_line = self.source_end[start - 1] if start > 0 else 0
        after_tokens = self.tokens_end[start - 1] if start > 0 else 0
        return self.source_line[end] - after_line, self.tokens_before[end] - after_tokens

    def follows(self, i: int) -> bool:
        """True when held line i directly follows held line i-1 in the source."""
        return i > 0 and self.source_line[i] == self.source_end[i - 1]

    def span_text(self, start: int, end: int) -> str:
        return "\n".join(self.lines[start:end])

    def span_tokens(self, start: int, end: int) -> int:
        return sum(self.line_tokens[start:end])

    def condensed(
        self,
        start: int,
        end: int,
        text: str,
        *,
        shown: Sequence[int] = (),
        priority: int,
        order: int = 0,
    ) -> Unit:
        """A unit showing `text` for lines [start, end), of which the lines `shown` appear verbatim."""
        visible = {i for i in shown if i not in self.synthetic}
        first = self.source_line[start] if end > start else 0
        last = self.source_end[end - 1] if end > start else 0
        first_tokens = self.tokens_before[start] if end > start else 0
        last_tokens = self.tokens_end[end - 1] if end > start else 0
        return Unit(
            start,
            end,
            priority,
            order,
            text=text,
            hidden_lines=(last - first) - len(visible),
            hidden_tokens=(last_tokens - first_tokens) - sum(self.line_tokens[i] for i in visible),
        )


def split_lines(text: str) -> list[str]:
    """Lines of `text`; a final newline does not make an extra empty line."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def count_lines(lines: Sequence[str], tokenizer: Tokenizer) -> list[int]:
    """Tokens of each line with its newline.

    Bundled encodings are called directly: per-line hashing for the count cache, or a thread
    per line in a batch, costs more than encoding a short line.
    """
    if isinstance(tokenizer, TiktokenTokenizer):
        encode = tokenizer.encode
        return [len(encode(line + "\n")) for line in lines]
    return [tokenizer.count(line + "\n") for line in lines]


def head_tail_order(index: int, start: int, end: int) -> int:
    """Tie-break that alternates from the end and the start of [start, end): last, first, 2nd last…"""
    from_end = end - 1 - index
    from_start = index - start
    return 2 * from_end if from_end <= from_start else 2 * from_start + 1
