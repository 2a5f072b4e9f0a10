"""Times given by people: `7d`, `24h`, `2w`, `2026-11-01`, ISO 8601, or Unix seconds."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tokenpilot._exceptions import InputError

_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(value: str | float | int, *, now: float) -> float:
    """Unix seconds for a duration ago (`7d`), a date or datetime (naive means UTC), or a number.

    parse_time("7d", now=now) == now - 7 * 86400
    """
    if isinstance(value, bool):
        raise InputError(f"not a time: {value!r}")
    if isinstance(value, int | float):
        return _epoch_number(float(value))
    text = value.strip()
    match = _AGO.match(text.lower())
    if match:
        return now - float(match.group(1)) * _SECONDS[match.group(2)]
    try:
        return _epoch_number(float(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" UTC", "+00:00"))
    except ValueError:
        raise InputError(
            f"not a time: {value!r} (use 7d, 24h, 2w, an ISO date like 2026-11-01, or Unix seconds)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _epoch_number(number: float) -> float:
    if number != number or number < 0:
        raise InputError(f"not a time: {number!r}")
    # Exports disagree on units; past 1e11 seconds (year 5138) it must be milliseconds.
    return number / 1000 if number > 1e11 else number


def iso(ts: float) -> str:
    """UTC ISO 8601 with seconds, e.g. 2026-11-21T07:22:57Z."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
