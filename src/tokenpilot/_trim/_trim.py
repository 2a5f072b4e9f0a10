"""`trim`: one tool output fitted to a token budget, by mode and detected format."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from tokenpilot._exceptions import InputError
from tokenpilot._tokens import Tokenizer, tokenizer_for
from tokenpilot._trim._detect import detect
from tokenpilot._trim._digest import fitted_notes
from tokenpilot._trim._document import Document, Unit, head_tail_order, split_lines
from tokenpilot._trim._fit import Fitted, fit_units
from tokenpilot._trim._markers import spill_note
from tokenpilot._trim._reduce import new_digest, note_units, section_units
from tokenpilot._trim._result import MODES, Omitted, TrimResult
from tokenpilot._trim._settings import TrimSettings, trim_settings
from tokenpilot._trim._spill import spill as spill_file
from tokenpilot._trim.head_tail import head_tail

logger = logging.getLogger(__name__)
STDERR_HEADER = "[stderr]"
# A trailer naming the spill file is left out when it would take more than this share of the budget.
MAX_TRAILER_SHARE = 1 / 3


@dataclass(frozen=True, slots=True)
class Section:
    """Lines [start, end) of a document that one reducer handles, in format `fmt`."""

    start: int
    end: int
    fmt: str
    notes: tuple[str, ...] = ()  # a digest of the whole section, shown first


def exit_line(exit_code: int) -> str:
    return f"[exit status {exit_code}]"


def combine(text: str, stderr: str | None, exit_code: int | None) -> str:
    """The output as trimmed: stdout, then `[stderr]` and stderr, then `[exit status N]`."""
    if not stderr and exit_code is None:
        return text
    parts = [text.removesuffix("\n")] if text else []
    if stderr:
        parts += [STDERR_HEADER, stderr.removesuffix("\n")]
    if exit_code is not None:
        parts.append(exit_line(exit_code))
    return "\n".join(parts)


def check_arguments(budget: int | None, mode: str) -> None:
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 0):
        raise InputError(f"budget must be a whole number of tokens >= 0, got {budget!r}")
    if mode not in MODES:
        raise InputError(f"unknown trim mode {mode!r} (known: {', '.join(MODES)})")


def trim(
    text: str,
    budget: int | None,
    *,
    tool: str | None = None,
    mode: str = "auto",
    model: str | None = None,
    stderr: str | None = None,
    exit_code: int | None = None,
    spill: bool | None = None,
    tokenizer: Tokenizer | None = None,
) -> TrimResult:
    """Fit a tool's output into `budget` tokens of `model`, keeping what an engineer would keep.

    `budget` None takes the tool's configured budget (`[trim.tools.NAME]`, then `[trim]`, then a
    default per format). `mode` is auto | full | head_tail | errors_only | smart; `auto` takes
    the tool's configured mode, else `smart`. An output that fits is returned unchanged. When
    something is cut and spilling is on (default; `[trim] spill`), the whole output is written to
    a content-addressed file named in the last line and in `spill_path`. `tokenizer` (instead
    of `model`) counts with a tokenizer the caller already holds.

    >>> import tokenpilot as tp
    >>> result = tp.trim("ok\\n" * 5000, 20, model="gpt-4o", spill=False)
    >>> result.tokens <= 20, result.omitted.lines > 0
    (True, True)
    """
    if not isinstance(text, str) or (stderr is not None and not isinstance(stderr, str)):
        raise InputError("trim needs text (and stderr) as str")
    check_arguments(budget, mode)
    tokenizer = tokenizer or tokenizer_for(model)
    whole = combine(text, stderr, exit_code)
    if budget is not None:
        # Cheap path for outputs that already fit: one count, no detection, no config.
        tokens = tokenizer.count(whole)
        if tokens <= tokenizer.safe_budget(budget):
            return _unchanged(whole, tokens, budget, tokenizer)
    settings = trim_settings()
    out_lines = split_lines(text)
    err_lines = split_lines(stderr or "")
    fmt = detect(out_lines, tool)
    chosen = settings.for_tool(tool, fmt)
    budget = chosen.budget if budget is None else budget
    assert budget is not None
    if mode == "auto":
        mode = chosen.mode or "auto"
    tokens = tokenizer.count(whole)
    limit = tokenizer.safe_budget(budget)
    if tokens <= limit:
        return _unchanged(whole, tokens, budget, tokenizer)
    lines = list(out_lines)
    synthetic: set[int] = set()
    notes: tuple[str, ...] = ()
    digest = new_digest(fmt) if mode in ("auto", "smart") else None
    if digest is not None:
        for line in out_lines:
            digest.add(line)
        notes = fitted_notes(digest, limit, tokenizer)
    sections = [Section(0, len(out_lines), fmt, notes)]
    if err_lines:
        synthetic.add(len(lines))
        lines.append(STDERR_HEADER)
        sections.append(Section(len(lines), len(lines) + len(err_lines), detect(err_lines, tool)))
        lines += err_lines
    if exit_code is not None:
        synthetic.add(len(lines))
        lines.append(exit_line(exit_code))
    doc = Document.from_lines(lines, tokenizer, frozenset(synthetic))
    spill_path = _spill(whole, doc, settings, spill)
    return trim_document(doc, sections, mode, budget, tokenizer, spill_path, fmt)


trim_output = trim  # the name before the fit verbs became one family (tp.pack, tp.compact, tp.trim)


def trim_document(
    doc: Document,
    sections: list[Section],
    mode: str,
    budget: int,
    tokenizer: Tokenizer,
    spill_path: Path | None,
    fmt: str,
) -> TrimResult:
    """Fit a document already known to be over budget (also used by the streaming path)."""
    limit = tokenizer.safe_budget(budget)
    trailer = spill_note(spill_path, doc.total_lines, doc.total_tokens) if spill_path else None
    if trailer and tokenizer.count(trailer) > limit * MAX_TRAILER_SHARE:
        trailer = None
    applied = "head_tail" if mode in ("full", "head_tail") else ("smart" if mode == "auto" else mode)
    fitted: Fitted | None = None
    if applied != "head_tail":
        units = _pinned(doc)
        reserve = tokenizer.count(trailer + "\n") if trailer else 0
        for section in sections:
            room = limit - reserve
            if applied == "smart" and section.notes:
                units += note_units(section.start, section.notes)
                room -= sum(tokenizer.count(note + "\n") for note in section.notes)
            units += section_units(doc, section.start, section.end, applied, section.fmt, room, tokenizer)
        if applied == "errors_only":
            units += _stderr_units(doc, sections)
        fitted = fit_units(doc, units, limit, tokenizer, trailer)
        if fitted.kept_units <= len(doc.synthetic):
            fitted = None  # nothing of substance fitted: head and tail say more than markers
    if fitted is None:
        fitted = head_tail(doc, limit, tokenizer, trailer)
        applied = "head_tail"
    logger.debug(
        "trimmed tool output",
        extra={"mode": applied, "format": fmt, "tokens": fitted.tokens, "budget": budget},
    )
    return TrimResult(
        text=fitted.text,
        tokens=fitted.tokens,
        mode=applied,
        format=fmt,
        omitted=fitted.omitted,
        spill_path=spill_path,
        budget=budget,
        tokens_before=doc.total_tokens,
        lines_before=doc.total_lines,
        tokenizer=tokenizer.name,
        exact=tokenizer.exact,
    )


def _pinned(doc: Document) -> list[Unit]:
    """The synthetic lines (stderr header, exit status): cheap, and always worth their tokens."""
    return [Unit(i, i + 1, 0, -1 - n) for n, i in enumerate(sorted(doc.synthetic))]


def _stderr_units(doc: Document, sections: list[Section]) -> list[Unit]:
    """errors_only keeps all of stderr after the error lines: it is where tools complain."""
    units: list[Unit] = []
    for section in sections[1:]:
        units += [
            Unit(i, i + 1, 3, head_tail_order(i, section.start, section.end))
            for i in range(section.start, section.end)
        ]
    return units


def _spill(whole: str, doc: Document, settings: TrimSettings, spill: bool | None) -> Path | None:
    if not (settings.spill if spill is None else spill):
        return None
    try:
        return spill_file(
            [whole.encode("utf-8", "surrogatepass")], settings.spill_dir, settings.spill_ttl_days
        )
    except OSError as exc:  # a full or read-only cache must not lose the output itself
        logger.warning("cannot write spill file", extra={"error": str(exc)})
        return None


def _unchanged(text: str, tokens: int, budget: int, tokenizer: Tokenizer) -> TrimResult:
    return TrimResult(
        text=text,
        tokens=tokens,
        mode="full",
        format="",
        omitted=Omitted(),
        spill_path=None,
        budget=budget,
        tokens_before=tokens,
        lines_before=len(split_lines(text)),
        tokenizer=tokenizer.name,
        exact=tokenizer.exact,
    )
