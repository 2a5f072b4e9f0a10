"""tokenpilot: keep LLM agents inside their token budgets, and account for every token.

    import tokenpilot as tp
    tp.count_tokens("hello world", model="gpt-4o")     # 2

The whole public API is re-exported here; the modules behind it are private.
"""

from tokenpilot._exceptions import (
    BudgetError,
    BudgetExceeded,
    ConfigError,
    EndpointError,
    InputError,
    TokenizerError,
    TokenpilotError,
)
from tokenpilot.models import ModelInfo, get_model, list_models
from tokenpilot.tokens import Tokenizer, count_messages, count_tokens, tokenizer_for, truncate_to_tokens

__version__ = "0.1.0"

__all__ = [
    "BudgetError",
    "BudgetExceeded",
    "ConfigError",
    "EndpointError",
    "InputError",
    "ModelInfo",
    "Tokenizer",
    "TokenizerError",
    "TokenpilotError",
    "__version__",
    "count_messages",
    "count_tokens",
    "get_model",
    "list_models",
    "tokenizer_for",
    "truncate_to_tokens",
]
