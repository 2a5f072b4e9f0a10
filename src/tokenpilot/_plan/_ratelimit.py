"""Rate-limit headers of OpenAI and Anthropic, and `retry-after`, read into one shape.

OpenAI: `x-ratelimit-{limit,remaining}-{requests,tokens}` (integers) and
`x-ratelimit-reset-{requests,tokens}` (a Go duration: "1s", "6m0s", "20ms", "1h2m3.5s").
Anthropic: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`,
the reset an RFC 3339 time. Both: `retry-after` (seconds, or an HTTP date) and OpenAI's
`retry-after-ms`. Unparseable values are ignored (logged), never fatal: a bad header must not stop
a retry.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

log = logging.getLogger(__name__)

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


def parse_duration(text: str) -> float | None:
    """Seconds in a Go-style duration ("6m0s", "1.5s", "20ms"), or a bare number of seconds.

    >>> parse_duration("6m0s"), parse_duration("20ms"), parse_duration("1h2m3.5s")
    (360.0, 0.02, 3723.5)
    """
    text = text.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    position = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    return total if position == len(text) and position > 0 else None


def parse_reset_time(text: str, now: datetime) -> float | None:
    """Seconds from `now` until an RFC 3339 time (never negative), or None when unparseable.

    >>> parse_reset_time("2025-01-01T00:00:30Z", datetime(2025, 1, 1, tzinfo=UTC))
    30.0
    """
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def parse_retry_after(text: str, now: datetime) -> float | None:
    """`retry-after`: delay-seconds or an HTTP date (RFC 9110), as seconds from `now`."""
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # here, not at import: email is heavy

    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


@dataclass(frozen=True, slots=True)
class Bucket:
    """One rate-limited quantity (requests, tokens, input or output tokens)."""

    limit: int | None = None
    remaining: int | None = None
    reset_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class RateLimits:
    """What the headers of one response say about the provider's rate limits."""

    provider: str | None
    requests: Bucket
    tokens: Bucket
    input_tokens: Bucket
    output_tokens: Bucket
    retry_after_seconds: float | None

    @property
    def wait_seconds(self) -> float | None:
        """How long to wait before the next call: `retry-after` if given, else the longest reset
        of an exhausted bucket, else None (no need to wait, as far as the headers say)."""
        if self.retry_after_seconds is not None:
            return self.retry_after_seconds
        waits = [
            b.reset_seconds
            for b in (self.requests, self.tokens, self.input_tokens, self.output_tokens)
            if b.remaining == 0 and b.reset_seconds is not None
        ]
        return max(waits) if waits else None

    def allows(self, tokens: int) -> bool:
        """False when the remaining token allowance (or requests) is known to be too small."""
        if self.requests.remaining is not None and self.requests.remaining < 1:
            return False
        remaining = [b.remaining for b in (self.tokens, self.input_tokens) if b.remaining is not None]
        return all(r >= tokens for r in remaining)


def _int(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value.strip()))
    except ValueError:
        log.warning("ignoring unparseable rate-limit header", extra={"header": name, "value": value})
        return None


def parse_rate_limits(headers: Headers, *, now: datetime | None = None) -> RateLimits:
    """Read rate-limit headers (any case) of an OpenAI or Anthropic response.

    >>> limits = parse_rate_limits({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s"})
    >>> limits.tokens.remaining, limits.wait_seconds
    (0, 360.0)
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    lowered = {str(k).lower(): str(v) for k, v in pairs}
    now = now or datetime.now(UTC)

    def openai(kind: str) -> Bucket:
        reset_raw = lowered.get(f"x-ratelimit-reset-{kind}")
        reset = parse_duration(reset_raw) if reset_raw is not None else None
        if reset_raw is not None and reset is None:
            log.warning("ignoring unparseable rate-limit header", extra={"value": reset_raw})
        return Bucket(
            _int(lowered.get(f"x-ratelimit-limit-{kind}"), kind),
            _int(lowered.get(f"x-ratelimit-remaining-{kind}"), kind),
            reset,
        )

    def anthropic(kind: str) -> Bucket:
        reset_raw = lowered.get(f"anthropic-ratelimit-{kind}-reset")
        reset = parse_reset_time(reset_raw, now) if reset_raw is not None else None
        if reset_raw is not None and reset is None:
            log.warning("ignoring unparseable rate-limit header", extra={"value": reset_raw})
        return Bucket(
            _int(lowered.get(f"anthropic-ratelimit-{kind}-limit"), kind),
            _int(lowered.get(f"anthropic-ratelimit-{kind}-remaining"), kind),
            reset,
        )

    retry_after: float | None = None
    if "retry-after-ms" in lowered:
        milliseconds = parse_duration(lowered["retry-after-ms"])
        retry_after = milliseconds / 1000 if milliseconds is not None else None
    if retry_after is None and "retry-after" in lowered:
        retry_after = parse_retry_after(lowered["retry-after"], now)
    if any(k.startswith("anthropic-ratelimit-") for k in lowered):
        return RateLimits(
            "anthropic",
            anthropic("requests"),
            anthropic("tokens"),
            anthropic("input-tokens"),
            anthropic("output-tokens"),
            retry_after,
        )
    provider = "openai" if any(k.startswith("x-ratelimit-") for k in lowered) else None
    return RateLimits(provider, openai("requests"), openai("tokens"), Bucket(), Bucket(), retry_after)
