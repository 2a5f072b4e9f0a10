"""What a compaction did: actions with token counts and their expected cost effect."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CostEffect:
    """Expected effect of one compaction on billed input, in input-token equivalents.

    `extra_now` is what the rewrite costs at this turn over not compacting (cache writes instead of
    reads; negative when it is cheaper at once); `saved_per_turn` what each later turn saves;
    `horizon` the turns it is expected to pay back over; `net` = saved_per_turn x horizon - extra_now
    (positive: it pays); `break_even_turns` the turns needed to pay back (0: at once).
    """

    extra_now: float
    saved_per_turn: float
    horizon: int
    net: float
    break_even_turns: float | None
    forced: bool

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True, slots=True)
class Action:
    """One change: `kind` (clamp, mask, dedupe, prune, window, summarize, interrupt), the input
    positions it touched, tokens before and after, a one-line description and, on the action that
    opens a compaction, its expected cost effect."""

    kind: str
    positions: tuple[int, ...]
    tokens_before: int
    tokens_after: int
    detail: str
    cost: CostEffect | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "positions": list(self.positions),
            "tokens_before": self.tokens_before,
            "tokens_after": self.tokens_after,
            "detail": self.detail,
        }
        if self.cost is not None:
            out["cost"] = self.cost.as_dict()
        return out


@dataclass(frozen=True, slots=True)
class CompactResult:
    """The compacted conversation (`messages`, in the input's format and shape) and its report."""

    messages: Any
    tokens_before: int
    tokens_after: int
    actions: tuple[Action, ...]
    format: str
    budget: int
    target: int
    compacted: bool
    # Whether the counts are exact for the model's tokenizer, or estimates (then the budget was
    # enforced with the tokenizer's safety margin).
    exact: bool = True
    tokenizer: str = ""

    @property
    def tokens(self) -> int:
        """Tokens of the compacted conversation (the fit family's name for `tokens_after`)."""
        return self.tokens_after

    def report(self) -> dict[str, Any]:
        """The JSON report (without the messages); `as_dict()` is the old name."""
        return self.as_dict()

    def as_dict(self) -> dict[str, Any]:
        """The JSON report (without the messages)."""
        return {
            "tokens": self.tokens_after,
            "tokenizer": self.tokenizer,
            "format": self.format,
            "budget": self.budget,
            "target": self.target,
            "tokens_before": self.tokens_before,
            "tokens_after": self.tokens_after,
            "compacted": self.compacted,
            "exact": self.exact,
            "actions": [a.as_dict() for a in self.actions],
        }
