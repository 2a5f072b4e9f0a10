"""What `pack()` returns: the packed text and the report of what is in it and what was left out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tokenpilot._pack.discover import Exclusion
from tokenpilot._pack.slices import Slice

TIER_ORDER = ("path", "outline", "slices", "full")  # from least to most shown


@dataclass(frozen=True, slots=True)
class PackedFile:
    """A file in the packed text: its tier, the tokens it costs there, its relevance score and,
    at the `slices` tier, the definitions shown whole."""

    path: str
    tier: str
    tokens: int
    score: float
    slices: tuple[Slice, ...] = ()


@dataclass(frozen=True, slots=True)
class Redaction:
    """A line of a shown file replaced by a redaction marker."""

    path: str
    line: int
    kind: str


@dataclass(frozen=True, slots=True)
class PackStats:
    """How the pack went: files seen, files looked at closely, milliseconds per stage."""

    files_seen: int
    files_candidates: int
    files_examined: int
    timing_ms: Mapping[str, float] = field(default_factory=dict)
    cache: str = "off"


@dataclass(frozen=True, slots=True)
class PackResult:
    """The packed context (`text`, exactly `tokens` of `tokenizer`, never over `budget`) and its report.

    >>> result = PackResult("<pack/>", 3, 100, "gpt-4o", "o200k_base", True, 1, (), (), (), (),
    ...                     PackStats(0, 0, 0))
    >>> result.report()["tokens"], result.manifest() == result.report()
    (3, True)
    """

    text: str
    tokens: int
    budget: int
    model: str
    tokenizer: str
    exact: bool
    task_tokens: int
    files: tuple[PackedFile, ...]
    excluded: tuple[Exclusion, ...]
    redacted: tuple[Redaction, ...]
    notes: tuple[Exclusion, ...]
    stats: PackStats
    warnings: tuple[str, ...] = ()

    def report(self) -> dict[str, Any]:
        """The machine-readable report (what `tokenpilot pack --json` prints)."""
        files: list[dict[str, Any]] = []
        for f in self.files:
            entry: dict[str, Any] = {
                "path": f.path,
                "tier": f.tier,
                "tokens": f.tokens,
                "score": round(f.score, 6),
            }
            if f.slices:
                entry["slices"] = [{"name": s.name, "start": s.start, "end": s.end} for s in f.slices]
            files.append(entry)
        return {
            "model": self.model,
            "tokenizer": self.tokenizer,
            "exact": self.exact,
            "budget": self.budget,
            "tokens": self.tokens,
            "task_tokens": self.task_tokens,
            "files": files,
            "excluded": [{"path": e.path, "reason": e.reason} for e in self.excluded],
            "redacted": [{"path": r.path, "line": r.line, "kind": r.kind} for r in self.redacted],
            "notes": [{"path": n.path, "note": n.reason} for n in self.notes],
            "warnings": list(self.warnings),
            "timing_ms": {k: round(v, 1) for k, v in self.stats.timing_ms.items()},
        }

    def manifest(self) -> dict[str, Any]:
        """The same as `report()` (the name of the first version)."""
        return self.report()
