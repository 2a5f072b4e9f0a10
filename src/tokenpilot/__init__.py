"""tokenpilot: keep LLM agents inside their token budgets, and account for every token.

    import tokenpilot as tp
    tp.count_tokens("hello world", model="gpt-4o")     # 2

The whole public API is re-exported here; the modules behind it are private.
"""

from importlib.metadata import PackageNotFoundError, version

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
from tokenpilot.pack import PackedFile, PackResult, pack
from tokenpilot.tokens import Tokenizer, count_messages, count_tokens, tokenizer_for, truncate_to_tokens

try:
    __version__ = version("tokenpilot")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = [
    "BudgetError",
    "BudgetExceeded",
    "ConfigError",
    "EndpointError",
    "InputError",
    "ModelInfo",
    "PackResult",
    "PackedFile",
    "Tokenizer",
    "TokenizerError",
    "TokenpilotError",
    "__version__",
    "count_messages",
    "count_tokens",
    "get_model",
    "list_models",
    "pack",
    "tokenizer_for",
    "truncate_to_tokens",
]
