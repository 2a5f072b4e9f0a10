"""The ledger: one record per call, alerts, import/export and reports (see `open_ledger`)."""

from tokenpilot.ledger._alerts import ALERT_KINDS, Alert
from tokenpilot.ledger._ledger import Ledger, open_ledger
from tokenpilot.ledger._records import LedgerRecord

__all__ = ["ALERT_KINDS", "Alert", "Ledger", "LedgerRecord", "open_ledger"]
