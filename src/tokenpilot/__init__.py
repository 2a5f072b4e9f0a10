"""tokenpilot: keep LLM agents inside their token budgets, and account for every token.

    >>> import tokenpilot as tp
    >>> tp.count_tokens("hello world", model="gpt-4o")
    2

The whole public API is re-exported here; the modules behind it are private.
"""

from tokenpilot._account import Account, Alert, Ledger, LedgerRecord, Reservation, open_account, open_ledger
from tokenpilot._budget import Budget, Usage
from tokenpilot._compact import Action, Compactor, CompactResult, Pricing, Problem, compact, validate
from tokenpilot._exceptions import (
    BudgetError,
    BudgetExceeded,
    ConfigError,
    EndpointError,
    InputError,
    StoreBusy,
    StoreError,
    TokenizerError,
    TokenpilotError,
)
from tokenpilot._handoff import FitResult, HandoffResult, ResetDecision, fit_context, handoff, should_reset
from tokenpilot._models import ModelInfo, get_model, list_models
from tokenpilot._pack import PackedFile, PackResult, pack
from tokenpilot._plan import (
    CallPlan,
    FailoverDecision,
    FileToWrite,
    PromptRegistry,
    PromptSection,
    RateLimits,
    ResponseCheck,
    check_response,
    failover,
    next_attempt,
    parse_rate_limits,
    plan_call,
    route,
)
from tokenpilot._tokens import Tokenizer, count_messages, count_tokens, tokenizer_for, truncate_to_tokens
from tokenpilot._trim import Omitted, OmittedSpan, TrimResult, trim, trim_output, trim_stream

__version__ = "0.1.0"

__all__ = [
    "Account",
    "Action",
    "Alert",
    "Budget",
    "BudgetError",
    "BudgetExceeded",
    "CallPlan",
    "CompactResult",
    "Compactor",
    "ConfigError",
    "EndpointError",
    "FailoverDecision",
    "FileToWrite",
    "FitResult",
    "HandoffResult",
    "InputError",
    "Ledger",
    "LedgerRecord",
    "ModelInfo",
    "Omitted",
    "OmittedSpan",
    "PackResult",
    "PackedFile",
    "Pricing",
    "Problem",
    "PromptRegistry",
    "PromptSection",
    "RateLimits",
    "Reservation",
    "ResetDecision",
    "ResponseCheck",
    "StoreBusy",
    "StoreError",
    "Tokenizer",
    "TokenizerError",
    "TokenpilotError",
    "TrimResult",
    "Usage",
    "__version__",
    "check_response",
    "compact",
    "count_messages",
    "count_tokens",
    "failover",
    "fit_context",
    "get_model",
    "handoff",
    "list_models",
    "next_attempt",
    "open_account",
    "open_ledger",
    "pack",
    "parse_rate_limits",
    "plan_call",
    "route",
    "should_reset",
    "tokenizer_for",
    "trim",
    "trim_output",
    "trim_stream",
    "truncate_to_tokens",
    "validate",
]

# One tier, as httpx does: reprs, tracebacks and docs name `tokenpilot.X`, never the private module.
for _name in __all__:
    if not _name.startswith("__"):
        globals()[_name].__module__ = "tokenpilot"
del _name
