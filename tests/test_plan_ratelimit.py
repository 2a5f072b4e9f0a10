"""Rate-limit headers of OpenAI and Anthropic, and retry-after."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from tokenpilot._plan._ratelimit import parse_duration, parse_rate_limits

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
OPENAI_HEADERS = {
    "x-ratelimit-limit-requests": "60",
    "x-ratelimit-limit-tokens": "150000",
    "x-ratelimit-remaining-requests": "59",
    "x-ratelimit-remaining-tokens": "149984",
    "x-ratelimit-reset-requests": "1s",
    "x-ratelimit-reset-tokens": "6m0s",
}
ANTHROPIC_HEADERS = {
    "anthropic-ratelimit-requests-limit": "50",
    "anthropic-ratelimit-requests-remaining": "49",
    "anthropic-ratelimit-requests-reset": "2025-06-01T12:00:01Z",
    "anthropic-ratelimit-tokens-limit": "90000",
    "anthropic-ratelimit-tokens-remaining": "0",
    "anthropic-ratelimit-tokens-reset": "2025-06-01T12:00:42Z",
    "anthropic-ratelimit-input-tokens-limit": "80000",
    "anthropic-ratelimit-input-tokens-remaining": "0",
    "anthropic-ratelimit-input-tokens-reset": "2025-06-01T12:00:42Z",
    "anthropic-ratelimit-output-tokens-limit": "16000",
    "anthropic-ratelimit-output-tokens-remaining": "16000",
    "anthropic-ratelimit-output-tokens-reset": "2025-06-01T12:00:00Z",
}


def test_openai_headers() -> None:
    limits = parse_rate_limits(OPENAI_HEADERS, now=NOW)
    assert limits.provider == "openai"
    assert (limits.requests.limit, limits.requests.remaining, limits.requests.reset_seconds) == (60, 59, 1.0)
    assert (limits.tokens.limit, limits.tokens.remaining, limits.tokens.reset_seconds) == (
        150000,
        149984,
        360.0,
    )
    assert limits.wait_seconds is None  # nothing exhausted, no retry-after
    assert limits.allows(100_000) and not limits.allows(150_000)


def test_anthropic_headers_reset_is_rfc3339_relative_to_now() -> None:
    limits = parse_rate_limits(ANTHROPIC_HEADERS, now=NOW)
    assert limits.provider == "anthropic"
    assert limits.requests.reset_seconds == 1.0
    assert limits.tokens.remaining == 0 and limits.tokens.reset_seconds == 42.0
    assert limits.output_tokens.remaining == 16000
    assert limits.wait_seconds == 42.0  # the exhausted bucket's reset


def test_retry_after_wins_over_resets() -> None:
    limits = parse_rate_limits({**ANTHROPIC_HEADERS, "retry-after": "7"}, now=NOW)
    assert limits.retry_after_seconds == 7.0 and limits.wait_seconds == 7.0


def test_retry_after_http_date_and_retry_after_ms() -> None:
    assert parse_rate_limits({"Retry-After": "Sun, 01 Jun 2025 12:00:30 GMT"}, now=NOW).wait_seconds == 30.0
    assert parse_rate_limits({"retry-after-ms": "1500", "retry-after": "9"}, now=NOW).wait_seconds == 1.5


def test_header_names_are_case_insensitive_and_pairs_are_accepted() -> None:
    limits = parse_rate_limits(
        [("X-RateLimit-Remaining-Tokens", "0"), ("X-RateLimit-Reset-Tokens", "20ms")], now=NOW
    )
    assert limits.tokens.remaining == 0 and limits.wait_seconds == 0.02


def test_unparseable_values_are_ignored_not_fatal() -> None:
    limits = parse_rate_limits(
        {"x-ratelimit-remaining-tokens": "lots", "x-ratelimit-reset-tokens": "soon", "retry-after": "later"},
        now=NOW,
    )
    assert limits.tokens.remaining is None and limits.tokens.reset_seconds is None
    assert limits.wait_seconds is None


def test_go_durations() -> None:
    assert parse_duration("1s") == 1.0
    assert parse_duration("6m0s") == 360.0
    assert parse_duration("1h2m3.5s") == 3723.5
    assert parse_duration("20ms") == 0.02
    assert parse_duration("2.5") == 2.5
    assert parse_duration("5x") is None
    assert parse_duration("") is None


@given(st.integers(0, 23), st.integers(0, 59), st.integers(0, 59), st.integers(0, 999))
def test_duration_round_trip_of_any_go_style_duration(h: int, m: int, s: int, ms: int) -> None:
    text = (f"{h}h" if h else "") + f"{m}m{s}s" + (f"{ms}ms" if ms else "")
    assert abs(parse_duration(text) - (h * 3600 + m * 60 + s + ms / 1000)) < 1e-6  # type: ignore[operator]
