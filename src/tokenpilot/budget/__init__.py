"""Budgets: scopes, periods, reservations; stored in SQLite or PostgreSQL (see `tokenpilot.open_ledger`)."""

from tokenpilot.budget._period import Period
from tokenpilot.budget._reservation import Reservation
from tokenpilot.budget._types import Budget, Usage, UsageLine

__all__ = ["Budget", "Period", "Reservation", "Usage", "UsageLine"]
