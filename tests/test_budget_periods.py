"""Scopes and periods: pure functions, no database."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenpilot import InputError
from tokenpilot._budget import Period, enclosing_scopes, is_within, normalize_scope, subtree_bounds

segment = st.text(alphabet="abcxyz-_.0129/AZ ~", min_size=1, max_size=6).filter(
    lambda s: "/" not in s and s.strip() == s and s not in (".", "..")
)


def ts(text: str, tz: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


def test_enclosing_scopes_lists_every_ancestor_outermost_first() -> None:
    assert enclosing_scopes("/acme/fileorg/phase-2/builder/") == [
        "acme",
        "acme/fileorg",
        "acme/fileorg/phase-2",
        "acme/fileorg/phase-2/builder",
    ]


@pytest.mark.parametrize("bad", ["", "/", "a//b", "a/../b", "a/ b", "a/\x00"])
def test_invalid_scopes_are_refused(bad: str) -> None:
    with pytest.raises(InputError):
        normalize_scope(bad)


def test_sibling_with_common_prefix_is_not_within() -> None:
    assert is_within("acme/x", "acme")
    assert not is_within("acmex", "acme")
    assert not is_within("acme-2/x", "acme")


@given(st.lists(segment, min_size=1, max_size=3), st.lists(segment, min_size=1, max_size=4))
def test_subtree_range_matches_is_within_exactly(parent_parts: list[str], other_parts: list[str]) -> None:
    parent, other = "/".join(parent_parts), "/".join(other_parts)
    low, high = subtree_bounds(parent)
    in_range = other == parent or low <= other < high
    assert in_range == is_within(other, parent)


def test_daily_window_is_aligned_to_local_midnight() -> None:
    now = ts("2026-03-10T15:30:00", "Europe/Paris")
    start, end = Period.parse("daily").window(now, "Europe/Paris")
    assert start == ts("2026-03-10T00:00:00", "Europe/Paris")
    assert end == ts("2026-03-11T00:00:00", "Europe/Paris")


def test_daily_window_across_dst_change_is_23_hours() -> None:
    now = ts("2026-03-29T12:00:00", "Europe/Paris")  # clocks go forward at 02:00 that day
    start, end = Period.parse("daily").window(now, "Europe/Paris")
    assert start is not None and end is not None
    assert end - start == 23 * 3600


def test_weekly_window_starts_monday_and_monthly_on_the_first() -> None:
    now = ts("2026-02-19T08:00:00")  # a Thursday
    assert Period.parse("weekly").window(now)[0] == ts("2026-02-16T00:00:00")
    assert Period.parse("monthly").window(now) == (ts("2026-02-01T00:00:00"), ts("2026-03-01T00:00:00"))
    december = ts("2026-12-31T23:59:00")
    assert Period.parse("monthly").window(december)[1] == ts("2027-01-01T00:00:00")


def test_rolling_window_counts_whole_steps_and_none_is_unbounded() -> None:
    # 24 h in 60 steps of 24 min: the window starts at the step that began at least 24 h ago.
    assert Period.parse("rolling:24h").window(1_000_000.0) == (912_960.0, None)
    assert Period.parse("none").window(5.0) == (None, None)
    assert Period.parse("rolling:90m").spec == "rolling:90m"
    assert Period.parse("rolling:120m").spec == "rolling:2h"


@given(st.floats(min_value=1e6, max_value=4e9), st.integers(1, 10 * 86_400))
def test_rolling_window_covers_the_nominal_window_and_at_most_two_steps_more(
    now: float, seconds: int
) -> None:
    period = Period.parse(f"rolling:{seconds}s")
    start, end = period.window(now)
    assert start is not None and end is None
    assert now - seconds - 2 * period.step < start <= now - seconds
    assert period.bucket(now) - start == period.steps * period.step


@given(st.floats(min_value=0, max_value=4e9), st.sampled_from(["hourly", "daily", "weekly", "monthly"]))
def test_calendar_window_contains_now(now: float, kind: str) -> None:
    start, end = Period.parse(kind).window(now, "America/New_York")
    assert start is not None and end is not None
    assert start <= now < end


ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe"]


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=1.6e9, max_value=1.9e9),
            st.sampled_from(["hourly", "daily", "weekly", "monthly"]),
            st.sampled_from(
                ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe"]
            ),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_a_window_remembered_from_an_earlier_call_is_the_one_computed_afresh(
    asks: list[tuple[float, str, str]],
) -> None:
    for now, kind, timezone in asks:
        period = Period.parse(kind)
        assert period.window(now, timezone) == period._calendar_window(now, timezone)
        assert period.window(now + 1800, timezone) == period._calendar_window(now + 1800, timezone)


@pytest.mark.parametrize("bad", ["yearly", "rolling:0h", "rolling:5", "daily2"])
def test_unknown_period_is_a_clear_error(bad: str) -> None:
    with pytest.raises(InputError, match="period"):
        Period.parse(bad)
