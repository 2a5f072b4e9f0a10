"""A call's usage is checked once per settle: the one-test path for the usual values agrees with the
field-by-field checks on any values."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tokenpilot._account.records import STATUSES, CallUsage
from tokenpilot._exceptions import InputError

_NUMBERS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.just("7"),
)
_VALUES: dict[str, Any] = {
    "input_tokens": _NUMBERS,
    "output_tokens": _NUMBERS,
    "cache_read_tokens": _NUMBERS,
    "cache_write_tokens": _NUMBERS,
    "reasoning_tokens": _NUMBERS,
    "http_status": _NUMBERS,
    "max_tokens_requested": _NUMBERS,
    "optimized_from": _NUMBERS,
    "optimized_to": _NUMBERS,
    "latency_s": _NUMBERS,
    "ttft_s": _NUMBERS,
    "usage_estimated": st.one_of(st.booleans(), st.integers(0, 1), st.none()),
    "status": st.one_of(st.sampled_from(sorted(STATUSES)), st.just("maybe")),
}


def _unchecked(values: dict[str, Any]) -> CallUsage:
    """A CallUsage holding `values` as given, its checks not run."""
    usage = CallUsage.__new__(CallUsage)
    for field in fields(CallUsage):
        object.__setattr__(usage, field.name, values.get(field.name, field.default))
    return usage


@given(st.fixed_dictionaries({}, optional=_VALUES))
def test_the_quick_check_passes_only_what_the_full_checks_pass(values: dict[str, Any]) -> None:
    values.setdefault("input_tokens", 100)
    usage = _unchecked(values)
    try:
        usage._check()
        valid = True
    except (InputError, TypeError):
        valid = False
    if usage._plainly_valid():
        assert valid
    try:
        CallUsage(**values)
        built = True
    except (InputError, TypeError):
        built = False
    assert built == valid


def test_usual_usage_is_quick_valid_and_a_bad_one_names_its_field() -> None:
    usage = CallUsage(2_000, 8, cache_read_tokens=1_500, latency_s=0.01, http_status=200, ttft_s=0.002)
    assert usage._plainly_valid()
    try:
        CallUsage(10, 1, cache_read_tokens=20)
    except InputError as refused:
        assert "exceed input_tokens" in str(refused)
    else:
        raise AssertionError("cache reads over the input were accepted")
