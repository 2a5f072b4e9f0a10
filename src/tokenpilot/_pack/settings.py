"""The `[pack]` settings (config file and call arguments) and the budget syntax (`20k`, `1.5m`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from tokenpilot._config import load_config
from tokenpilot._exceptions import ConfigError, InputError
from tokenpilot._pack.cache import default_cache_path
from tokenpilot._pack.discover import DEFAULT_MAX_BYTES

SECRET_MODES = ("redact", "drop")


@dataclass(frozen=True, slots=True)
class Settings:
    max_file_bytes: int
    secrets: str
    cache_path: Path | None


def settings(cache: bool | str | Path | None, secrets: str | None, max_file_bytes: int | None) -> Settings:
    config = load_config()
    table = config.section("pack")

    def source(key: str) -> str:
        return config.source_of("pack", key)

    known = {"max_file_bytes", "secrets", "cache", "cache_path"}
    for key in table:
        if key not in known:
            raise ConfigError(
                f"unknown setting (known: {', '.join(sorted(known))})", source=source(key), key=f"pack.{key}"
            )
    size = max_file_bytes if max_file_bytes is not None else table.get("max_file_bytes", DEFAULT_MAX_BYTES)
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise ConfigError(
            "must be a positive integer", source=source("max_file_bytes"), key="pack.max_file_bytes"
        )
    mode = secrets if secrets is not None else table.get("secrets", "redact")
    if mode not in SECRET_MODES:
        raise ConfigError(
            f"must be one of {', '.join(SECRET_MODES)}", source=source("secrets"), key="pack.secrets"
        )
    enabled = table.get("cache", True)
    if not isinstance(enabled, bool):
        raise ConfigError("must be true or false", source=source("cache"), key="pack.cache")
    configured_path = table.get("cache_path")
    if configured_path is not None and not isinstance(configured_path, str):
        raise ConfigError("must be a path", source=source("cache_path"), key="pack.cache_path")
    path: Path | None
    if cache is False or (cache is None and not enabled):
        path = None
    elif isinstance(cache, str | Path) and not isinstance(cache, bool):
        path = Path(cache)
    else:
        path = Path(configured_path).expanduser() if configured_path else default_cache_path()
    return Settings(size, mode, path)


def parse_budget(value: str | int) -> int:
    """A budget from `20000`, `20k`, `1.5m` (case-insensitive, `_` and `,` allowed).

    >>> parse_budget("1.5k")
    1500
    """
    if isinstance(value, int) and not isinstance(value, bool):
        number = float(value)
    else:
        text = str(value).strip().lower().replace("_", "").replace(",", "")
        scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
        digits = text[:-1] if scale != 1 else text
        try:
            number = float(digits) * scale
        except ValueError:
            raise InputError(f"not a token budget: {value!r} (use e.g. 20000, 20k, 1.5m)") from None
    if not math.isfinite(number) or number < 1 or number != int(number):
        raise InputError(f"a token budget must be a positive whole number of tokens, got {value!r}")
    return int(number)
