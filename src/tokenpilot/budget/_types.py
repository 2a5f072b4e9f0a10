"""Budgets and usage as plain data (no database here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tokenpilot._exceptions import InputError

# Units a budget can limit, in the order reports show them; "tokens" is input + output.
UNITS = ("tokens", "input_tokens", "output_tokens", "usd")


@dataclass(frozen=True, slots=True)
class Budget:
    """Limits on everything spent beneath `scope` in each period.

    Budget("acme/fileorg", tokens=2_000_000, period="daily", warn_at=0.8)
    """

    scope: str
    tokens: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    usd: float | None = None
    period: str = "none"
    timezone: str = "UTC"
    warn_at: float = 0.8

    def limits(self) -> dict[str, float]:
        """The units this budget limits and their limits, in `UNITS` order."""
        values = {
            "tokens": self.tokens,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "usd": self.usd,
        }
        return {unit: float(v) for unit, v in values.items() if v is not None}

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "tokens": self.tokens,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "usd": self.usd,
            "period": self.period,
            "timezone": self.timezone,
            "warn_at": self.warn_at,
        }


def check_limit(name: str, value: float | None, *, whole: bool) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value < 0:
        raise InputError(f"budget limit {name} must be a non-negative number, got {value!r}")
    if whole and int(value) != value:
        raise InputError(f"budget limit {name} must be a whole number of tokens, got {value!r}")


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
