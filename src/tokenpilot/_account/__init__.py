"""The account: budgets, reservations, the per-call ledger, alerts and reports over one store.

Open it with `open_ledger` (also `open_account`); `Ledger` (also `Account`) is the façade. The budget
rules below it (scopes, periods, the refusal check) live in `tokenpilot._budget` and do no I/O.
"""

from tokenpilot._account.account import Ledger, open_ledger
from tokenpilot._account.alerts import ALERT_KINDS, Alert
from tokenpilot._account.exchange import ImportResult
from tokenpilot._account.records import LedgerRecord
from tokenpilot._account.reports import GroupStats, Recommendation, Report
from tokenpilot._account.reservations import Reservation

Account = Ledger
open_account = open_ledger

__all__ = [
    "ALERT_KINDS",
    "Account",
    "Alert",
    "GroupStats",
    "ImportResult",
    "Ledger",
    "LedgerRecord",
    "Recommendation",
    "Report",
    "Reservation",
    "open_account",
    "open_ledger",
]
