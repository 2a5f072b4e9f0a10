"""Every error tokenpilot raises, in one tree.

    TokenpilotError            anything tokenpilot raises on purpose
    ├── ConfigError            a config file, environment variable or setting is invalid
    ├── InputError             the caller's data is unusable (bad JSON, unknown format, missing file)
    ├── TokenizerError         a tokenizer cannot be loaded (corrupt data file, bad tokenizer.json)
    ├── EndpointError          a configured remote endpoint failed (count-tokens, summarizer)
    ├── StoreError             the budget/ledger database cannot be used (locked, corrupt, unreachable)
    └── BudgetError            a token budget cannot be met
        └── BudgetExceeded     a reservation would take a scope past its limit

The CLI maps each to one line on stderr and an exit code (`exit_code`).
"""

from __future__ import annotations


class TokenpilotError(Exception):
    """Base class of every error tokenpilot raises on purpose."""

    exit_code = 1


class ConfigError(TokenpilotError):
    """Invalid configuration; the message names the file (or variable) and the key."""

    exit_code = 2

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None):
        where = ", ".join(part for part in (source, f"key {key!r}" if key else None) if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.source = source
        self.key = key


class InputError(TokenpilotError):
    """The input given to an operation is unusable."""

    exit_code = 2


class TokenizerError(TokenpilotError):
    """A tokenizer could not be loaded or used."""


class EndpointError(TokenpilotError):
    """A configured remote endpoint failed or answered nonsense."""


class StoreError(TokenpilotError):
    """The budget/ledger database is locked, corrupt, unreachable or too new; nothing was written."""

    exit_code = 4


class StoreBusy(StoreError):
    """Another writer holds the SQLite ledger and the caller asked not to wait (`wait=False`)."""


class BudgetError(TokenpilotError):
    """A token budget cannot be met (e.g. the fixed part of a prompt alone is over it)."""

    exit_code = 3


class BudgetExceeded(BudgetError):
    """A reservation would take a scope past its limit."""

    def __init__(
        self,
        scope: str,
        *,
        limit: float,
        spent: float,
        reserved: float,
        requested: float,
        unit: str = "tokens",
    ):
        super().__init__(
            f"budget exceeded for {scope!r}: limit {limit:,g} {unit}, spent {spent:,g}, "
            f"reserved {reserved:,g}, requested {requested:,g}"
        )
        self.scope = scope
        self.limit = limit
        self.spent = spent
        self.reserved = reserved
        self.requested = requested
        self.unit = unit
