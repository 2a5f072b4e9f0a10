"""Selection: one tier per file, the most value within the budget."""

from __future__ import annotations

from itertools import product

from hypothesis import given
from hypothesis import strategies as st

from tokenpilot._pack.select import Choice, Option, select, total_cost

_OPTIONS = st.tuples(st.integers(1, 50), st.integers(1, 400), st.integers(1, 4000)).map(
    lambda c: (
        Option("path", c[0], 0.02),
        Option("outline", c[0] + c[1], 0.45),
        Option("full", c[0] + c[1] + c[2], 1.0),
    )
)
_CHOICES = st.lists(st.tuples(_OPTIONS, st.floats(0.01, 10)), max_size=12).map(
    lambda items: [
        Choice(key, tuple(Option(o.tier, o.cost, o.value * weight) for o in options))
        for key, (options, weight) in enumerate(items)
    ]
)


@given(_CHOICES, st.integers(0, 6000))
def test_selection_never_exceeds_capacity(choices: list[Choice], capacity: int) -> None:
    chosen = select(choices, capacity)
    assert total_cost(chosen) <= capacity
    for key, option in chosen.items():
        assert option in choices[key].options


@given(_CHOICES.filter(lambda c: len(c) <= 5), st.integers(0, 3000))
def test_selection_is_close_to_the_optimum_on_small_instances(choices: list[Choice], capacity: int) -> None:
    best = 0.0
    for combo in product(*[(None, *c.options) for c in choices]):
        picked = [o for o in combo if o is not None]
        if sum(o.cost for o in picked) <= capacity:
            best = max(best, sum(o.value for o in picked))
    got = sum(o.value for o in select(choices, capacity).values())
    largest_item = max((o.value for c in choices for o in c.options), default=0.0)
    # greedy on the convex hulls plus improvement: within one item of the optimum
    assert got >= best - largest_item - 1e-9


def test_selection_prefers_full_text_of_the_most_valuable_file_when_it_fits() -> None:
    top = Choice(0, (Option("path", 5, 0.02), Option("outline", 50, 0.45), Option("full", 500, 1.0)))
    other = Choice(1, (Option("path", 5, 0.0002), Option("outline", 50, 0.0045), Option("full", 500, 0.01)))
    chosen = select([top, other], 560)
    assert chosen[0].tier == "full"


def test_selection_falls_back_to_outline_when_full_does_not_fit() -> None:
    top = Choice(0, (Option("path", 5, 0.02), Option("outline", 50, 0.45), Option("full", 5000, 1.0)))
    assert select([top], 600)[0].tier == "outline"


def test_selection_with_no_room_chooses_nothing() -> None:
    assert select([Choice(0, (Option("path", 5, 1.0),))], 0) == {}
