"""What a call costs at its model's price; None when the price is unknown (never $0).

The account counts dollars in whole nano-dollars (`to_nano`), so counters add and subtract exactly
and a recount from the records gives the same integers.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from tokenpilot._account.records import CallUsage
from tokenpilot._exceptions import TokenpilotError

NANO = 1_000_000_000


def to_nano(usd: float | None) -> int:
    """Whole nano-dollars of `usd` (0 for an unknown cost, which is counted apart).

    >>> to_nano(0.080875)
    80875000
    """
    return 0 if usd is None else round(usd * NANO)


CONFIG_RECHECK = 1.0  # seconds between looks at the config files for changed prices
_config_seen: list[Any] = [0.0, None]  # (when, config): finding the config costs ~0.4 ms a look


def model_price(model: str) -> tuple[Any, str | None]:
    """(ModelInfo or None, provider) — an unresolvable name is simply a model without a price."""
    from tokenpilot._config import load_config

    now = time.monotonic()
    if now - _config_seen[0] >= CONFIG_RECHECK or _config_seen[1] is None:
        _config_seen[:] = [now, load_config()]
    # The registry resolves config files on every call; cache per model and config state.
    return _model_price(model, id(_config_seen[1]))


@lru_cache(maxsize=256)
def _model_price(model: str, _config_id: int) -> tuple[Any, str | None]:
    from tokenpilot._models import get_model

    try:
        info = get_model(model)
    except TokenpilotError:
        return None, None
    return info, info.provider


def call_cost(model: str, usage: CallUsage) -> float | None:
    """USD for a call, None when the price is unknown (never 0 for unknown)."""
    info, _ = model_price(model)
    if info is None:
        return None
    uncached = max(0, usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens)
    cost: float | None = info.cost(
        input_tokens=uncached,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
    )
    return cost


def request_cost(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """USD for `input_tokens` uncached in and `output_tokens` out (a reservation's request), or None."""
    info, _ = model_price(model)
    if info is None:
        return None
    cost: float | None = info.cost(input_tokens=input_tokens, output_tokens=output_tokens)
    return cost
