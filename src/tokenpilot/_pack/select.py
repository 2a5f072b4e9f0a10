"""Stage 5: one tier per file, maximising total value within the budget (multiple-choice knapsack).

Each file offers options (`path`, `outline`, `full`), each with a token cost and a value (the
file's relevance × the tier's utility); a file may also be omitted (cost 0, value 0). The solver:

1. keeps, per file, the options on the upper convex hull of (cost, value) — the upgrades worth
   making, in order of falling value per token;
2. takes upgrades greedily by value per token across all files while they fit (the LP relaxation's
   order, optimal up to the one item that does not fit);
3. improves: for the most valuable files not at their best option, tries a direct jump to a better
   option, paying for it by undoing the least efficient upgrades taken, when that gains value.

Ties break on the file's position, so the choice is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_IMPROVE_CANDIDATES = 40


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
            if slope_option >= slope_last:
                hull.pop()
            else:
                break
        hull.append(option)
    return hull


def select(choices: Sequence[Choice], capacity: int) -> dict[int, Option]:
    """The chosen option per file key (files not in the result are omitted); total cost <= capacity.

    >>> a = Choice(0, (Option("path", 5, 0.1), Option("full", 50, 1.0)))
    >>> select([a], 40)[0].tier
    'path'
    """
    chosen: dict[int, Option] = {}
    if capacity <= 0:
        return chosen
    hulls = {choice.key: _hull(choice.options) for choice in choices}
    steps: list[tuple[float, int, int]] = []  # (-efficiency, key, step index)
    for key, hull in hulls.items():
        previous_cost, previous_value = 0, 0.0
        for index, option in enumerate(hull):
            efficiency = (option.value - previous_value) / (option.cost - previous_cost)
            steps.append((-efficiency, key, index))
            previous_cost, previous_value = option.cost, option.value
    steps.sort()
    used = 0
    level: dict[int, int] = {}  # key -> index of the hull option taken
    blocked: set[int] = set()
    for _, key, index in steps:
        if key in blocked or level.get(key, -1) != index - 1:
            continue
        option = hulls[key][index]
        extra = option.cost - (hulls[key][index - 1].cost if index else 0)
        if used + extra > capacity:
            blocked.add(key)
            continue
        used += extra
        level[key] = index
        chosen[key] = option
    _improve(choices, chosen, capacity)
    return chosen


def _improve(choices: Sequence[Choice], chosen: dict[int, Option], capacity: int) -> None:
    """Jump a valuable file to a better option, paying with the least efficient other choices."""
    by_value = sorted(choices, key=lambda c: (-max((o.value for o in c.options), default=0.0), c.key))
    for choice in by_value[:_IMPROVE_CANDIDATES]:
        current = chosen.get(choice.key)
        current_cost = current.cost if current else 0
        current_value = current.value if current else 0.0
        for target in sorted(choice.options, key=lambda o: -o.value):
            if target.value <= current_value:
                break
            used = sum(o.cost for o in chosen.values())
            need = target.cost - current_cost - (capacity - used)
            lost = 0.0
            freed: list[int] = []
            if need > 0:
                # give up whole choices of other files, least valuable per token first
                others = sorted(
                    (k for k in chosen if k != choice.key),
                    key=lambda k: (chosen[k].value / max(chosen[k].cost, 1), k),
                )
                got = 0
                for k in others:
                    if got >= need:
                        break
                    got += chosen[k].cost
                    lost += chosen[k].value
                    freed.append(k)
                if got < need:
                    continue
            if target.value - current_value > lost:
                for k in freed:
                    del chosen[k]
                chosen[choice.key] = target
                break


def total_cost(chosen: Mapping[int, Option]) -> int:
    """Tokens of the chosen options together."""
    return sum(option.cost for option in chosen.values())
