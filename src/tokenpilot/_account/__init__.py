"""The account: budgets, reservations, the per-call ledger, alerts and reports over one store.

Open it with `open_ledger` (also `open_account`); `Ledger` (also `Account`) is the façade. The budget
rules below it (scopes, periods, the refusal check) live in `tokenpilot._budget` and do no I/O.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokenpilot._account.account import Ledger, open_ledger
    from tokenpilot._account.alerts import ALERT_KINDS, Alert
    from tokenpilot._account.exchange import ImportResult
    from tokenpilot._account.records import LedgerRecord
    from tokenpilot._account.reports import GroupStats, Recommendation, Report
    from tokenpilot._account.reservations import Reservation

    Account = Ledger
    open_account = open_ledger

# Loaded on first use (PEP 562): the CLI's other commands, and `times` or `exchange` alone, never
# load the store, its SQL and the reservations.
_HOMES = {
    "Ledger": "account",
    "Account": "account",
    "open_ledger": "account",
    "open_account": "account",
    "ALERT_KINDS": "alerts",
    "Alert": "alerts",
    "ImportResult": "exchange",
    "LedgerRecord": "records",
    "GroupStats": "reports",
    "Recommendation": "reports",
    "Report": "reports",
    "Reservation": "reservations",
}
_ALIASES = {"Account": "Ledger", "open_account": "open_ledger"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tokenpilot._account' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"tokenpilot._account.{home}"), _ALIASES.get(name, name))
    globals()[name] = value
    return value


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
