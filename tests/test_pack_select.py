"""Selection: one tier per file, the most value within the budget."""

from __future__ import annotations

from itertools import accumulate, product

from hypothesis import given
from hypothesis import strategies as st

from tokenpilot._pack import select as selection
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


# --- the room a big upgrade leaves: its stops on the way, and big upgrades later --------------------
def _climb(path: int, outline: int, slices: list[int], full: int) -> tuple[Option, ...]:
    """A file's options in climbing order; slices' values rise slowly, so the hull skips most."""
    sliced = [path + outline + s for s in accumulate(slices)]
    costs = [path, path + outline, *sliced, path + outline + sum(slices) + full]
    values = [0.02, 0.45, *(0.5 + 0.02 * n for n in range(len(slices))), 1.0]
    tiers = ["path", "outline", *(f"slices:{n + 1}" for n in range(len(slices))), "full"]
    return tuple(Option(t, c, v) for t, c, v in zip(tiers, costs, values, strict=True))


_CLIMBS = st.lists(
    st.tuples(
        st.integers(1, 20),
        st.integers(1, 300),
        st.lists(st.integers(1, 1500), max_size=5),
        st.integers(1, 20_000),
        st.floats(0.01, 10),
    ),
    max_size=10,
).map(
    lambda items: [
        Choice(key, tuple(Option(o.tier, o.cost, o.value * w) for o in _climb(p, ol, sl, f)))
        for key, (p, ol, sl, f, w) in enumerate(items)
    ]
)


@given(_CLIMBS, st.integers(0, 40_000), st.integers(0, 40_000))
def test_a_larger_capacity_never_gives_a_file_an_earlier_option(
    choices: list[Choice], capacity: int, more: int
) -> None:
    small, large = select(choices, capacity), select(choices, capacity + more)
    for key, option in small.items():
        assert key in large
        options = choices[key].options
        assert options.index(large[key]) >= options.index(option)
    assert total_cost(large) <= capacity + more


def test_room_left_by_a_whole_file_that_does_not_fit_goes_to_its_slices_on_the_way() -> None:
    # the hull goes from the outline straight to the whole file, skipping the slices
    top = Choice(0, _climb(5, 100, [400, 400, 400], 3_000))
    assert not [o for o in selection._hull(top.options) if o.tier.startswith("slices")]
    chosen = select([top], 2_000)
    assert chosen[0].tier == "slices:3"
    assert select([top], 20_000)[0].tier == "full"


def test_an_upgrade_bigger_than_what_comes_before_it_waits_behind_smaller_ones() -> None:
    top = Choice(0, (Option("path", 5, 0.02), Option("full", 60_000, 1.0)))
    others = [Choice(k, (Option("path", 5, 0.0002), Option("outline", 200, 0.0045))) for k in range(1, 150)]
    chosen = select([top, *others], 25_000)
    # the whole file cannot fit: the outlines after it in value per token fill the room
    assert total_cost(chosen) >= 25_000 - 200
    assert chosen[0].tier == "path"
    assert select([top, *others], 100_000)[0].tier == "full"
    assert selection.DEFER_RATIO > 0
