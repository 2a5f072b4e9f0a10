"""Budget rules as plain data and pure functions: scopes, periods, limits, usage, the refusal check.

No I/O here: `tokenpilot._account` stores budgets and counts spend against them.
"""

from tokenpilot._budget.budgets import UNITS, Budget, check_limit
from tokenpilot._budget.periods import Period, zone
from tokenpilot._budget.refusal import Amounts, Refusal, Request, fraction, refusal
from tokenpilot._budget.scopes import enclosing_scopes, is_within, normalize_scope, subtree_bounds
from tokenpilot._budget.usage import Usage, UsageLine, usage_of

__all__ = [
    "UNITS",
    "Amounts",
    "Budget",
    "Period",
    "Refusal",
    "Request",
    "Usage",
    "UsageLine",
    "check_limit",
    "enclosing_scopes",
    "fraction",
    "is_within",
    "normalize_scope",
    "refusal",
    "subtree_bounds",
    "usage_of",
    "zone",
]
