"""One tier per file, maximising total value within the budget (multiple-choice knapsack), monotone.

Each file offers options (`path`, `outline`, `slices` of several sizes, `full`) in the order a file
climbs (each shows at least what the one before it shows), each with a token cost and a value (the
file's relevance × the tier's utility); a file may also be omitted (cost 0, value 0). The solver:

1. keeps, per file, the options on the upper convex hull of (cost, value) — the upgrades worth
   making, in order of falling value per token;
2. puts every file's upgrades in one sequence by value per token, discounted for size
   (÷ (1 + tokens / SIZE_SCALE), never above the file's previous upgrade; ties: file position,
   then step) — close to the order of the LP relaxation, and independent of the budget;
3. splits each upgrade into the file's options between its two ends that the hull skipped
   (slices of 2, 3, 5 definitions between one and the whole file), in place: the climb to the
   upgrade's end is the same, with stops on the way;
4. takes the longest prefix of that sequence that fits.

A prefix of a fixed sequence makes the choice monotone in the budget: a larger budget takes a
longer prefix, so no file is ever shown at a lower tier, or with fewer of its definitions, when the
budget grows. It is also the only way to be monotone: the choices over all budgets form a chain, so
a fill of the room after the first upgrade that does not fit with later, smaller upgrades would be
lost by the budget that takes that upgrade. What the prefix can fill is that upgrade's own stops
(step 3): at every budget the value is at least that of the prefix without them, and the room left
is at most the cost of one stop. Its value is within the value of that one upgrade of the LP optimum.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SIZE_SCALE = 10_000.0  # tokens: an upgrade this big counts half its value per token in the order
# an upgrade bigger than DEFER_RATIO × (the tokens before it + DEFER_FLOOR) waits until they are
DEFER_RATIO = 0.5
DEFER_FLOOR = 10_000


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


def _stops(options: Sequence[Option], hull: Sequence[Option]) -> list[Option]:
    """The hull with, before each of its points, the skipped options on the way there (climbing order).

    A stop is an option after the hull point before it in the file's order, cheaper and worth less
    than the hull point after it, and costing and worth more than the stop before it.
    """
    position = {id(option): n for n, option in enumerate(options)}
    out: list[Option] = []
    previous: Option | None = None
    for point in hull:
        low = position[id(previous)] if previous is not None else -1
        for option in options[low + 1 : position[id(point)]]:
            last = out[-1] if out else None
            if option.cost <= 0 or option.value <= 0:
                continue
            if option.cost >= point.cost or option.value >= point.value:
                continue
            if last is not None and (option.cost <= last.cost or option.value <= last.value):
                continue
            out.append(option)
        out.append(point)
        previous = point
    return out


def _sequence(choices: Sequence[Choice]) -> tuple[list[tuple[int, int, int]], dict[int, list[Option]]]:
    """Every file's upgrades as (key, stop index, extra cost), by falling value per token of the hull.

    Returns the sequence and each file's stops (its hull points and the options on the way to them).
    """
    stops_of: dict[int, list[Option]] = {}
    steps: list[tuple[float, int, int, int, int]] = []
    for choice in choices:
        hull = _hull(choice.options)
        stops = _stops(choice.options, hull)
        stops_of[choice.key] = stops
        previous_cost, previous_value = 0, 0.0
        previous_priority = math.inf
        stop = 0
        for index, option in enumerate(hull):
            extra = option.cost - previous_cost
            efficiency = (option.value - previous_value) / extra
            # big upgrades wait behind small ones of similar worth: the prefix stops at the first
            # upgrade that does not fit, and a big one stopping it early would leave its room empty
            priority = min(previous_priority, efficiency / (1.0 + extra / SIZE_SCALE))
            climbed = previous_cost
            while True:  # the stops on the way to this hull point come with it, in order
                reached = stops[stop]
                steps.append((-priority, choice.key, index, stop, reached.cost - climbed))
                climbed = reached.cost
                stop += 1
                if reached is option:
                    break
            previous_cost, previous_value, previous_priority = option.cost, option.value, priority
    steps.sort()
    return _defer_big([(key, stop, extra) for _, key, _, stop, extra in steps]), stops_of


def _defer_big(steps: Sequence[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """The sequence with each step bigger than DEFER_RATIO × (tokens before it + DEFER_FLOOR) moved later.

    A moved step (and every later step of its file) comes back, in the order it had, as soon as the
    steps before it cost enough: the room a prefix leaves is then at most DEFER_RATIO × what it
    holds (+ the floor). The order depends on the steps only, never on the budget.
    """
    if DEFER_RATIO <= 0:
        return list(steps)
    out: list[tuple[int, int, int]] = []
    waiting: dict[int, list[tuple[int, tuple[int, int, int]]]] = {}  # key -> (position, step), in order
    used = 0

    def fits(extra: int) -> bool:
        return extra <= DEFER_RATIO * (used + DEFER_FLOOR)

    def release() -> None:
        nonlocal used
        while True:
            ready = [key for key, queue in waiting.items() if fits(queue[0][1][2])]
            if not ready:
                return
            key = min(ready, key=lambda k: waiting[k][0][0])
            queue = waiting[key]
            while queue and fits(queue[0][1][2]):
                _, step = queue.pop(0)
                out.append(step)
                used += step[2]
            if not queue:
                del waiting[key]

    for position, step in enumerate(steps):
        key, _, extra = step
        if key in waiting or not fits(extra):
            waiting.setdefault(key, []).append((position, step))
            continue
        out.append(step)
        used += extra
        release()
    while waiting:  # nothing small is left: the big steps in their order
        key = min(waiting, key=lambda k: waiting[k][0][0])
        out.extend(step for _, step in waiting.pop(key))
    return out


def select(choices: Sequence[Choice], capacity: int) -> dict[int, Option]:
    """The chosen option per file key (files not in the result are omitted); total cost <= capacity.

    `choices[k].options` are in the order the file climbs: each shows at least what the one before
    it shows. Monotone: for a larger capacity every file gets the same option or a later one.

    >>> a = Choice(0, (Option("path", 5, 0.1), Option("full", 50, 1.0)))
    >>> select([a], 40)[0].tier
    'path'
    >>> b = Choice(0, (Option("path", 5, 0.1), Option("slices:1", 30, 0.3), Option("full", 50, 1.0)))
    >>> select([b], 40)[0].tier  # off the hull, but on the way to the whole file
    'slices:1'
    """
    chosen: dict[int, Option] = {}
    if capacity <= 0:
        return chosen
    sequence, stops_of = _sequence(choices)
    used = 0
    for key, stop, extra in sequence:
        if used + extra > capacity:
            break
        assert stop == 0 or chosen[key] is stops_of[key][stop - 1], "a file's upgrades come in order"
        used += extra
        chosen[key] = stops_of[key][stop]
    return chosen


def total_cost(chosen: Mapping[int, Option]) -> int:
    """Tokens of the chosen options together."""
    return sum(option.cost for option in chosen.values())
