"""Budgets: limits on everything spent beneath a scope in each period (plain data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tokenpilot._exceptions import InputError

# Units a budget can limit, in the order reports show them; "tokens" is input + output.
UNITS = ("tokens", "input_tokens", "output_tokens", "usd")


@dataclass(frozen=True, slots=True)
class Budget:
    """Limits on everything spent beneath `scope` in each period.

    >>> Budget("acme/fileorg", tokens=2_000_000, period="daily").limits()
    {'tokens': 2000000.0}
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
