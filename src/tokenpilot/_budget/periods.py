"""Budget periods: none, hourly, daily, weekly, monthly (aligned in a time zone) or a rolling window.

Spend is counted per *bucket*: the period itself for calendar periods, one bucket for `none`, and
steps of 1/60 of the window for rolling windows. A rolling window counts whole steps: at any moment
it holds everything since the start of the step that began one window length ago, so it sees at
least the nominal window (never less, so a budget is never overspent) and at most two steps more.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tokenpilot._exceptions import InputError

CALENDAR_KINDS = ("hourly", "daily", "weekly", "monthly")
_ROLLING = re.compile(r"^rolling:(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ROLLING_STEPS = 60  # a rolling window is counted in this many steps
NONE_BUCKET = 0.0  # the one bucket of a budget without a period
# The last calendar window computed per (kind, time zone): every reservation asks for it, twice.
_LAST_WINDOW: dict[tuple[str, str], tuple[float, float]] = {}


@dataclass(frozen=True, slots=True)
class Period:
    """How a budget's spend is windowed.

    >>> Period.parse("daily").window(1_780_000_000, "Europe/Paris")  # local midnight to midnight
    (1779919200.0, 1780005600.0)
    >>> Period.parse("rolling:1h").window(1_780_000_030)  # whole 60 s steps, at least 1 h back
    (1779996420.0, None)
    """

    kind: str  # "none", "hourly", "daily", "weekly", "monthly" or "rolling"
    seconds: int | None = None  # length of a rolling window

    @classmethod
    def parse(cls, spec: str | None) -> Period:
        return _parse(spec)

    @classmethod
    def _parse(cls, spec: str | None) -> Period:
        text = (spec or "none").strip().lower()
        if text in ("none", "", "total", "lifetime"):
            return cls("none")
        if text in CALENDAR_KINDS:
            return cls(text)
        match = _ROLLING.match(text)
        if match and int(match.group(1)) > 0:
            return cls("rolling", int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
        raise InputError(
            f"unknown period {spec!r}: use none, hourly, daily, weekly, monthly or rolling:N[s|m|h|d]"
        )

    @property
    def spec(self) -> str:
        if self.kind != "rolling":
            return self.kind
        assert self.seconds is not None
        for unit in ("d", "h", "m"):
            if self.seconds % _UNIT_SECONDS[unit] == 0:
                return f"rolling:{self.seconds // _UNIT_SECONDS[unit]}{unit}"
        return f"rolling:{self.seconds}s"

    @property
    def step(self) -> float:
        """Width of one rolling step in seconds (rolling windows only)."""
        assert self.seconds is not None
        return float(max(1, self.seconds // ROLLING_STEPS))

    @property
    def steps(self) -> int:
        """Whole steps behind the current one that a rolling window counts."""
        assert self.seconds is not None
        return math.ceil(self.seconds / self.step)

    def bucket(self, ts: float, timezone: str = "UTC") -> float:
        """The start of the bucket that counts spend at `ts` (see the module docstring)."""
        if self.kind == "none":
            return NONE_BUCKET
        if self.kind == "rolling":
            return math.floor(ts / self.step) * self.step
        start, _ = self.window(ts, timezone)
        assert start is not None
        return start

    def first_bucket(self, now: float, timezone: str = "UTC") -> float:
        """The oldest bucket counted at `now` (the current one unless the window rolls)."""
        if self.kind == "rolling":
            return self.bucket(now) - self.steps * self.step
        return self.bucket(now, timezone)

    def window(self, now: float, timezone: str = "UTC") -> tuple[float | None, float | None]:
        """(start, end) of the window counted at `now`, as Unix seconds; None means unbounded."""
        if self.kind == "none":
            return None, None
        if self.kind == "rolling":
            return self.first_bucket(now), None
        known = _LAST_WINDOW.get((self.kind, timezone))
        if known is not None and known[0] <= now < known[1]:
            return known  # windows partition time: the one that holds `now` is its window
        found = self._calendar_window(now, timezone)
        _LAST_WINDOW[(self.kind, timezone)] = found
        return found

    def _calendar_window(self, now: float, timezone: str) -> tuple[float, float]:
        tz = zone(timezone)
        local = datetime.fromtimestamp(now, tz)
        if self.kind == "hourly":
            start = local.replace(minute=0, second=0, microsecond=0)
            # Add in UTC: an hour is 3600 s even across a DST change.
            return start.timestamp(), start.timestamp() + 3600
        day = local.date()
        if self.kind == "weekly":
            day -= timedelta(days=day.weekday())
            following = day + timedelta(days=7)
        elif self.kind == "monthly":
            day = day.replace(day=1)
            following = (day + timedelta(days=32)).replace(day=1)
        else:
            following = day + timedelta(days=1)
        start_dt = datetime(day.year, day.month, day.day, tzinfo=tz)
        end_dt = datetime(following.year, following.month, following.day, tzinfo=tz)
        return start_dt.timestamp(), end_dt.timestamp()


@lru_cache(maxsize=256)
def _parse(spec: str | None) -> Period:
    # Every reservation parses its budgets' periods: the same few strings, parsed once.
    return Period._parse(spec)


def zone(name: str) -> ZoneInfo:
    """A time zone by IANA name, with a clear error for a typo."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"unknown time zone {name!r} (use an IANA name like 'UTC' or 'Europe/Paris')"
        ) from None
