"""What a scope spent and holds reserved in its current period, against its budget (plain data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tokenpilot._budget.budgets import UNITS, Budget
from tokenpilot._budget.refusal import Amounts


@dataclass(frozen=True, slots=True)
class UsageLine:
    """One unit of a scope's usage in the current period."""

    unit: str
    limit: float | None
    spent: float
    reserved: float

    @property
    def remaining(self) -> float | None:
        return None if self.limit is None else max(0.0, self.limit - self.spent - self.reserved)

    @property
    def fraction(self) -> float | None:
        """Spent plus reserved over the limit (None when unlimited; inf for a zero limit in use)."""
        if self.limit is None:
            return None
        used = self.spent + self.reserved
        if self.limit == 0:
            return 0.0 if used == 0 else float("inf")
        return used / self.limit

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "limit": self.limit,
            "spent": self.spent,
            "reserved": self.reserved,
            "remaining": self.remaining,
            "fraction": self.fraction,
        }


@dataclass(frozen=True, slots=True)
class Usage:
    """What a scope spent and holds reserved in its current period, against its budget (if any).

    `limit`, `spent`, `reserved` and `remaining` are those of the first limited unit (tokens when
    the budget limits tokens); `lines` has every unit.
    """

    scope: str
    budget: Budget | None
    period_start: float | None
    period_end: float | None
    lines: tuple[UsageLine, ...]
    calls: int
    unknown_cost_calls: int
    active_reservations: int

    def _primary(self) -> UsageLine:
        for line in self.lines:
            if line.limit is not None:
                return line
        return self.lines[0]

    @property
    def unit(self) -> str:
        return self._primary().unit

    @property
    def limit(self) -> float | None:
        return self._primary().limit

    @property
    def spent(self) -> float:
        return self._primary().spent

    @property
    def reserved(self) -> float:
        return self._primary().reserved

    @property
    def remaining(self) -> float | None:
        return self._primary().remaining

    @property
    def fraction(self) -> float | None:
        """The highest spent+reserved fraction over all limited units."""
        fractions = [f for f in (line.fraction for line in self.lines) if f is not None]
        return max(fractions) if fractions else None

    @property
    def state(self) -> str:
        """ "unlimited", "ok", "warning" (past warn_at) or "exhausted" (nothing left)."""
        fraction = self.fraction
        if fraction is None or self.budget is None:
            return "unlimited"
        if fraction >= 1:
            return "exhausted"
        return "warning" if fraction >= self.budget.warn_at else "ok"

    def line(self, unit: str) -> UsageLine:
        for line in self.lines:
            if line.unit == unit:
                return line
        raise KeyError(unit)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "budget": self.budget.as_dict() if self.budget else None,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "limit": self.limit,
            "spent": self.spent,
            "reserved": self.reserved,
            "remaining": self.remaining,
            "unit": self.unit,
            "state": self.state,
            "calls": self.calls,
            "unknown_cost_calls": self.unknown_cost_calls,
            "active_reservations": self.active_reservations,
            "lines": [line.as_dict() for line in self.lines],
        }


def usage_of(
    scope: str,
    budget: Budget | None,
    window: tuple[float | None, float | None],
    *,
    spent: Amounts,
    reserved: Amounts,
    calls: int,
    unknown_cost_calls: int,
    active_reservations: int,
) -> Usage:
    """A `Usage` from counted amounts: one line per limited unit (tokens and usd when unlimited)."""
    limits = budget.limits() if budget else {}
    shown = [u for u in UNITS if u in limits] or ["tokens", "usd"]
    lines = tuple(UsageLine(u, limits.get(u), spent.of(u), reserved.of(u)) for u in shown)
    return Usage(
        scope=scope,
        budget=budget,
        period_start=window[0],
        period_end=window[1],
        lines=lines,
        calls=calls,
        unknown_cost_calls=unknown_cost_calls,
        active_reservations=active_reservations,
    )
