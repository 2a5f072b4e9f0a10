"""Trimming a stream (a pipe, a file) in bounded memory.

Inputs up to `IN_MEMORY_LIMIT` bytes are read whole and trimmed by `trim_output`. Larger ones are
read line by line (a line longer than `MAX_LINE_BYTES` is taken in pieces) and never held whole:
every line is counted, written to the spill file, and kept only if it belongs to a bounded sketch:
the head, the lines matching error / warning patterns, and the tail, each capped at a multiple of
the budget. The sketch is a sparse document whose markers still give the true counts of what lies
between, and it is trimmed like any other document.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from tokenpilot._tokens import Tokenizer, tokenizer_for
from tokenpilot._trim import listings
from tokenpilot._trim._detect import detect
from tokenpilot._trim._digest import Digest, fitted_notes
from tokenpilot._trim._document import Document, count_lines
from tokenpilot._trim._patterns import is_error_line, is_warning_line
from tokenpilot._trim._reduce import new_digest
from tokenpilot._trim._result import TrimResult
from tokenpilot._trim._settings import trim_settings
from tokenpilot._trim._spill import SpillWriter, cleanup, default_spill_dir
from tokenpilot._trim._trim import Section, check_arguments, trim_document, trim_output

IN_MEMORY_LIMIT = 4 * 1024 * 1024
MAX_LINE_BYTES = 64 * 1024
BATCH_LINES = 4096
HEAD_SHARE, NOTABLE_SHARE, TAIL_SHARE = 1, 2, 4  # sketch caps, in budgets
LISTING_SHARE = 32  # a streamed `find` listing holds its shallow lines up to this many budgets
RUN_COST = 10  # tokens a held run of deeper lines costs when shown as a count


def trim_stream(
    stream: BinaryIO,
    budget: int | None,
    *,
    tool: str | None = None,
    mode: str = "auto",
    model: str | None = None,
    spill: bool | None = None,
) -> TrimResult:
    """`trim_output` for a binary stream of any size, in memory bounded by the budget.

    >>> import io
    >>> trim_stream(io.BytesIO(b"x\\n" * 10), 100, spill=False).text == "x\\n" * 10
    True
    """
    check_arguments(budget, mode)
    start = stream.read(IN_MEMORY_LIMIT + 1)
    if len(start) <= IN_MEMORY_LIMIT:
        return trim_output(
            start.decode("utf-8", "replace"), budget, tool=tool, mode=mode, model=model, spill=spill
        )
    settings = trim_settings()
    tokenizer = tokenizer_for(model)
    writer = (
        SpillWriter(settings.spill_dir or default_spill_dir())
        if (settings.spill if spill is None else spill)
        else None
    )
    digest: Digest | None = None
    try:
        sketch: _Sketch | _ListingSketch = _Sketch(tokenizer)
        for batch in _batches(start, stream, writer):
            if sketch.limit is None:
                fmt = detect(batch[:2000], tool)
                chosen = settings.for_tool(tool, fmt)
                budget = chosen.budget if budget is None else budget
                assert budget is not None
                mode = (chosen.mode or "smart") if mode == "auto" else mode
                smart = mode in ("auto", "smart")
                if smart and fmt == "listing" and listings.kind(batch[:500]) == "find":
                    sketch = _ListingSketch(tokenizer)
                sketch.start(tokenizer.safe_budget(budget), fmt)
                digest = new_digest(fmt) if smart else None
            if digest is not None:
                for line in batch:
                    digest.add(line)
            sketch.add(batch)
    except BaseException:
        if writer:
            writer.discard()
        raise
    spill_path: Path | None = None
    if writer:
        spill_path = writer.finish()
        cleanup(writer.directory, settings.spill_ttl_days)
    assert budget is not None
    doc = sketch.document()
    fmt = "text" if sketch.fmt == "json" else sketch.fmt
    notes = fitted_notes(digest, tokenizer.safe_budget(budget), tokenizer) if digest else ()
    section = Section(0, len(doc), fmt, notes)
    return trim_document(doc, [section], mode, budget, tokenizer, spill_path, sketch.fmt)


def _batches(start: bytes, stream: BinaryIO, writer: SpillWriter | None) -> Iterator[list[str]]:
    """Lines of `start` then of `stream`, in batches; every byte read also goes to the spill file."""
    if writer:
        writer.write(start)
    buffer = start
    batch: list[str] = []
    done = False
    while True:
        lines = buffer.split(b"\n")
        buffer = lines.pop()  # an unfinished line waits for the next read
        for raw in lines:
            batch += _pieces(raw)
            if len(batch) >= BATCH_LINES:
                yield batch
                batch = []
        while len(buffer) > MAX_LINE_BYTES:  # a line with no end in sight: take it in pieces
            batch.append(buffer[:MAX_LINE_BYTES].decode("utf-8", "replace"))
            buffer = buffer[MAX_LINE_BYTES:]
        if done:
            break
        more = stream.read(1024 * 1024)
        if not more:
            done = True
            if buffer:
                batch += _pieces(buffer)
                buffer = b""
            continue
        if writer:
            writer.write(more)
        buffer += more
    if batch:
        yield batch


def _pieces(raw: bytes) -> list[str]:
    text = raw.decode("utf-8", "replace").removesuffix("\r")
    if len(raw) <= MAX_LINE_BYTES:
        return [text]
    step = MAX_LINE_BYTES // 4  # characters, so a piece is at most MAX_LINE_BYTES bytes
    return [text[i : i + step] for i in range(0, len(text), step)]


class _Sketch:
    """Head, notable lines and tail of a stream, with the counts of everything else."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.limit: int | None = None
        self.fmt = "text"
        self.lines = 0
        self.tokens = 0
        self.head: list[tuple[int, int, str, int]] = []  # (line, tokens before, text, tokens)
        self.notable: list[tuple[int, int, str, int]] = []
        self.tail: deque[tuple[int, int, str, int]] = deque()
        self._head_open = True
        self._head_tokens = self._notable_tokens = self._tail_tokens = 0

    def start(self, limit: int, fmt: str) -> None:
        self.limit, self.fmt = limit, fmt

    def add(self, batch: list[str]) -> None:
        assert self.limit is not None
        for text, tokens in zip(batch, count_lines(batch, self.tokenizer), strict=True):
            entry = (self.lines, self.tokens, text, tokens)
            if self._head_open and self._head_tokens + tokens <= HEAD_SHARE * self.limit:
                self.head.append(entry)
                self._head_tokens += tokens
            else:
                self._head_open = False
                if (is_error_line(text) or is_warning_line(text)) and (
                    self._notable_tokens + tokens <= NOTABLE_SHARE * self.limit
                ):
                    self.notable.append(entry)
                    self._notable_tokens += tokens
                self.tail.append(entry)
                self._tail_tokens += tokens
                while self._tail_tokens > TAIL_SHARE * self.limit and self.tail:
                    self._tail_tokens -= self.tail.popleft()[3]
            self.lines += 1
            self.tokens += tokens

    def document(self) -> Document:
        held = sorted({entry[0]: entry for entry in (*self.head, *self.notable, *self.tail)}.values())
        return Document(
            lines=[entry[2] for entry in held],
            line_tokens=[entry[3] for entry in held],
            source_line=[entry[0] for entry in held] + [self.lines],
            tokens_before=[entry[1] for entry in held] + [self.tokens],
            source_end=[entry[0] + 1 for entry in held],
            tokens_end=[entry[1] + entry[3] for entry in held],
        )


class _ListingSketch:
    """A `find` listing's lines down to the depth that fits `LISTING_SHARE` budgets; each run of
    deeper lines is held as one line that stands for it, so every count stays true."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.limit: int | None = None
        self.fmt = "listing"
        self.lines = 0
        self.tokens = 0
        self.max_depth = listings.RUN_DEPTH - 1
        # [first source line, tokens before, its text, its tokens, depth, source lines, source tokens]
        self.held: list[list[Any]] = []
        self._held_tokens = 0

    def start(self, limit: int, fmt: str) -> None:
        self.limit, self.fmt = limit, fmt

    def add(self, batch: list[str]) -> None:
        assert self.limit is not None
        for text, tokens in zip(batch, count_lines(batch, self.tokenizer), strict=True):
            self._hold(text, tokens, listings.find_depth(text))
            self.lines += 1
            self.tokens += tokens
            while self._held_tokens > LISTING_SHARE * self.limit and self.max_depth > -1:
                deepest = max((e[4] for e in self.held if e[4] != listings.RUN_DEPTH), default=0)
                self.max_depth = min(self.max_depth, deepest) - 1
                self._merge()

    def _hold(self, text: str, tokens: int, depth: int) -> None:
        if depth <= self.max_depth:
            self.held.append([self.lines, self.tokens, text, tokens, depth, 1, tokens])
            self._held_tokens += tokens
            return
        last = self.held[-1] if self.held else None
        if last is not None and last[4] == listings.RUN_DEPTH:
            last[5] += 1
            last[6] += tokens
            return
        self.held.append([self.lines, self.tokens, text, tokens, listings.RUN_DEPTH, 1, tokens])
        self._held_tokens += RUN_COST

    def _merge(self) -> None:
        merged: list[list[Any]] = []
        held_tokens = 0
        for entry in self.held:
            if entry[4] > self.max_depth:
                last = merged[-1] if merged else None
                if last is not None and last[4] == listings.RUN_DEPTH:
                    last[5] += entry[5]
                    last[6] += entry[6]
                    continue
                entry = [entry[0], entry[1], entry[2], entry[3], listings.RUN_DEPTH, entry[5], entry[6]]
                held_tokens += RUN_COST
            else:
                held_tokens += entry[3]
            merged.append(entry)
        self.held, self._held_tokens = merged, held_tokens

    def document(self) -> Document:
        lines, line_tokens = [], []
        for entry in self.held:
            if entry[4] == listings.RUN_DEPTH and entry[5] > 1:
                text = listings.run_text(entry[5])
                lines.append(text)
                line_tokens.append(self.tokenizer.count(text + "\n"))
            else:  # a run of one line is that line
                lines.append(entry[2])
                line_tokens.append(entry[3])
        return Document(
            lines=lines,
            line_tokens=line_tokens,
            source_line=[e[0] for e in self.held] + [self.lines],
            tokens_before=[e[1] for e in self.held] + [self.tokens],
            source_end=[e[0] + e[5] for e in self.held],
            tokens_end=[e[1] + e[6] for e in self.held],
        )
