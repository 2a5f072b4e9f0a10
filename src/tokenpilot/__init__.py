"""tokenpilot: keep LLM agents inside their token budgets, and account for every token.

    >>> import tokenpilot as tp
    >>> tp.count_tokens("hello world", model="gpt-4o")
    2

The whole public API is re-exported here; the modules behind it are private.
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from tokenpilot._account import (
        Account,
        Alert,
        Ledger,
        LedgerRecord,
        Reservation,
        open_account,
        open_ledger,
    )
    from tokenpilot._budget import Budget, Usage
    from tokenpilot._compact import Action, Compactor, CompactResult, Pricing, Problem, compact, validate
    from tokenpilot._handoff import (
        FitResult,
        HandoffResult,
        ResetDecision,
        fit_context,
        handoff,
        should_reset,
    )
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

# Where each public name lives. They load on first use (PEP 562), so `import tokenpilot` costs
# almost nothing and `tokenpilot pack` never loads the ledger; type checkers read the imports above.
_HOMES = {
    "Account": "tokenpilot._account",
    "Alert": "tokenpilot._account",
    "Ledger": "tokenpilot._account",
    "LedgerRecord": "tokenpilot._account",
    "Reservation": "tokenpilot._account",
    "open_account": "tokenpilot._account",
    "open_ledger": "tokenpilot._account",
    "Budget": "tokenpilot._budget",
    "Usage": "tokenpilot._budget",
    "Action": "tokenpilot._compact",
    "Compactor": "tokenpilot._compact",
    "CompactResult": "tokenpilot._compact",
    "Pricing": "tokenpilot._compact",
    "Problem": "tokenpilot._compact",
    "compact": "tokenpilot._compact",
    "validate": "tokenpilot._compact",
    "FitResult": "tokenpilot._handoff",
    "HandoffResult": "tokenpilot._handoff",
    "ResetDecision": "tokenpilot._handoff",
    "fit_context": "tokenpilot._handoff",
    "handoff": "tokenpilot._handoff",
    "should_reset": "tokenpilot._handoff",
    "ModelInfo": "tokenpilot._models",
    "get_model": "tokenpilot._models",
    "list_models": "tokenpilot._models",
    "PackedFile": "tokenpilot._pack",
    "PackResult": "tokenpilot._pack",
    "pack": "tokenpilot._pack",
    "CallPlan": "tokenpilot._plan",
    "FailoverDecision": "tokenpilot._plan",
    "FileToWrite": "tokenpilot._plan",
    "PromptRegistry": "tokenpilot._plan",
    "PromptSection": "tokenpilot._plan",
    "RateLimits": "tokenpilot._plan",
    "ResponseCheck": "tokenpilot._plan",
    "check_response": "tokenpilot._plan",
    "failover": "tokenpilot._plan",
    "next_attempt": "tokenpilot._plan",
    "parse_rate_limits": "tokenpilot._plan",
    "plan_call": "tokenpilot._plan",
    "route": "tokenpilot._plan",
    "Tokenizer": "tokenpilot._tokens",
    "count_messages": "tokenpilot._tokens",
    "count_tokens": "tokenpilot._tokens",
    "tokenizer_for": "tokenpilot._tokens",
    "truncate_to_tokens": "tokenpilot._tokens",
    "Omitted": "tokenpilot._trim",
    "OmittedSpan": "tokenpilot._trim",
    "TrimResult": "tokenpilot._trim",
    "trim": "tokenpilot._trim",
    "trim_output": "tokenpilot._trim",
    "trim_stream": "tokenpilot._trim",
}

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


# Errors are raised from deep inside: named `tokenpilot.X` from the start, not on first access.
for _error in [v for v in globals().values() if isinstance(v, type) and issubclass(v, TokenpilotError)]:
    _error.__module__ = "tokenpilot"
del _error


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tokenpilot' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(home), name)
    # One tier, as httpx does: reprs, tracebacks and docs name `tokenpilot.X`, never the private module.
    if hasattr(value, "__module__"):
        value.__module__ = "tokenpilot"
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
