"""The refusal check: would holding `requested` on a budget pass one of its limits? (pure functions)

The store runs the same check as one conditional UPDATE per budget; this is the statement of it, used
to explain a refusal and to test the store against.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenpilot._budget.budgets import Budget

TOLERANCE = 1e-9  # float slack on a limit, so $0.10 of $0.10 is not refused for a rounding error


@dataclass(frozen=True, slots=True)
class Amounts:
    """Tokens and dollars, spent or held.

    >>> Amounts(1_000, 200, 0.5).of("tokens")
    1200.0
    """

    input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0

    def of(self, unit: str) -> float:
        if unit == "tokens":
            return float(self.input_tokens + self.output_tokens)
        if unit == "input_tokens":
            return float(self.input_tokens)
        if unit == "output_tokens":
            return float(self.output_tokens)
        return float(self.usd)


@dataclass(frozen=True, slots=True)
class Request:
    """What one reservation asks to hold: its input, its max output, and their cost (None if unknown)."""

    input_tokens: int
    output_tokens: int
    usd: float | None

    def of(self, unit: str) -> float | None:
        if unit == "usd":
            return self.usd
        return Amounts(self.input_tokens, self.output_tokens).of(unit)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a reservation was refused: the budget and unit it would overrun."""

    scope: str
    unit: str
    limit: float
    spent: float
    reserved: float
    requested: float
    reason: str = "limit"  # or "unknown_price": a USD limit cannot be checked without a price


def refusal(budget: Budget, spent: Amounts, reserved: Amounts, requested: Request) -> Refusal | None:
    """The first limit of `budget` that holding `requested` would pass, or None when it fits.

    >>> team = Budget("team", tokens=1_000)
    >>> found = refusal(team, Amounts(300, 100), Amounts(400), Request(101, 100, None))
    >>> found.unit, found.limit, found.spent, found.reserved, found.requested
    ('tokens', 1000.0, 400.0, 400.0, 201.0)
    >>> refusal(Budget("team", tokens=1_000), Amounts(), Amounts(), Request(500, 500, None)) is None
    True
    """
    for unit, limit in budget.limits().items():
        amount = requested.of(unit)
        used, held = spent.of(unit), reserved.of(unit)
        if amount is None:
            return Refusal(budget.scope, unit, limit, used, held, 0.0, "unknown_price")
        if used + held + amount > limit + TOLERANCE:
            return Refusal(budget.scope, unit, limit, used, held, amount)
    return None


def fraction(budget: Budget, spent: Amounts, reserved: Amounts) -> float:
    """The highest (spent + reserved) / limit over the limited units (inf for a zero limit in use).

    >>> fraction(Budget("a", tokens=1_000, usd=2.0), Amounts(500, 100), Amounts())
    0.6
    """
    highest = 0.0
    for unit, limit in budget.limits().items():
        used = spent.of(unit) + reserved.of(unit)
        share = (0.0 if used == 0 else float("inf")) if limit == 0 else used / limit
        highest = max(highest, share)
    return highest
