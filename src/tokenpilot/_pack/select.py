"""One tier per file, maximising total value within the budget (multiple-choice knapsack), monotone.

Each file offers options (`path`, `outline`, `slices` of several sizes, `full`), each with a token
cost and a value (the file's relevance × the tier's utility); a file may also be omitted (cost 0,
value 0). The solver:

1. keeps, per file, the options on the upper convex hull of (cost, value) — the upgrades worth
   making, in order of falling value per token;
2. puts every file's upgrades in one sequence by value per token, discounted for size
   (÷ (1 + tokens / SIZE_SCALE), never above the file's previous upgrade; ties: file position,
   then step) — close to the order of the LP relaxation, and independent of the budget;
3. takes the longest prefix of that sequence that fits.

A prefix of a fixed sequence makes the choice monotone in the budget: a larger budget takes a
longer prefix, so no file is ever shown at a lower tier, or with fewer of its definitions, when the
budget grows. The price is the room left after the first upgrade that does not fit (at most that
upgrade's cost): filling it with later, smaller upgrades would let a larger budget, which takes the
big upgrade, lose them. Its value is within the value of that one upgrade of the LP optimum.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SIZE_SCALE = 10_000.0  # tokens: an upgrade this big counts half its value per token in the order


@dataclass(frozen=True, slots=True)
class Option:
    """One way to show a file: its tier, token cost and value."""

    tier: str
    cost: int
    value: float


@dataclass(frozen=True, slots=True)
class Choice:
    """The options of one file (key: its position in the ranking)."""

    key: int
    options: tuple[Option, ...]


def _hull(options: Sequence[Option]) -> list[Option]:
    """Options on the upper convex hull from (0, 0), by rising cost, dominated ones dropped."""
    useful: list[Option] = []
    for option in sorted(options, key=lambda o: (o.cost, -o.value)):
        if option.cost <= 0 or option.value <= 0:
            continue
        if useful and option.value <= useful[-1].value:
            continue  # costs more, worth no more
        useful.append(option)
    hull: list[Option] = []
    for option in useful:
        while hull:
            last = hull[-1]
            before_cost, before_value = (hull[-2].cost, hull[-2].value) if len(hull) > 1 else (0, 0.0)
            # drop `last` if going straight to `option` is at least as efficient as through it
            slope_last = (last.value - before_value) / (last.cost - before_cost)
            slope_option = (option.value - last.value) / (option.cost - last.cost)
            if slope_option > slope_last:
                hull.pop()
            else:
                break
        hull.append(option)
    return hull


def _sequence(choices: Sequence[Choice]) -> tuple[list[tuple[int, int, int]], dict[int, list[Option]]]:
    """Every file's hull upgrades as (key, step index, extra cost), by falling value per token."""
    hulls = {choice.key: _hull(choice.options) for choice in choices}
    steps: list[tuple[float, int, int, int]] = []
    for key, hull in hulls.items():
        previous_cost, previous_value = 0, 0.0
        previous_priority = math.inf
        for index, option in enumerate(hull):
            extra = option.cost - previous_cost
            efficiency = (option.value - previous_value) / extra
            # big upgrades wait behind small ones of similar worth: the prefix stops at the first
            # upgrade that does not fit, and a big one stopping it early would leave its room empty
            priority = min(previous_priority, efficiency / (1.0 + extra / SIZE_SCALE))
            steps.append((-priority, key, index, extra))
            previous_cost, previous_value, previous_priority = option.cost, option.value, priority
    steps.sort()
    return [(key, index, extra) for _, key, index, extra in steps], hulls


def select(choices: Sequence[Choice], capacity: int) -> dict[int, Option]:
    """The chosen option per file key (files not in the result are omitted); total cost <= capacity.

    Monotone: for a larger capacity every file gets the same option or a later one of its hull.

    >>> a = Choice(0, (Option("path", 5, 0.1), Option("full", 50, 1.0)))
    >>> select([a], 40)[0].tier
    'path'
    """
    chosen: dict[int, Option] = {}
    if capacity <= 0:
        return chosen
    sequence, hulls = _sequence(choices)
    used = 0
    for key, index, extra in sequence:
        if used + extra > capacity:
            break
        assert index == 0 or chosen[key] is hulls[key][index - 1], "a file's upgrades come in order"
        used += extra
        chosen[key] = hulls[key][index]
    return chosen


def total_cost(chosen: Mapping[int, Option]) -> int:
    """Tokens of the chosen options together."""
    return sum(option.cost for option in chosen.values())
