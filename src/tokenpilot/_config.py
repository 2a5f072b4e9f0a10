"""Configuration files: user (`~/.config/tokenpilot/config.toml`) and project (`tokenpilot.toml`).

Both have the same shape; the user file wins over the project file field by field, as the
resolution chain of the model registry requires (env > user > project > data).

    default_model = "gpt-4o"
    default_context_window = 128000

    [models."my-model"]
    context_window = 32000
    max_output_tokens = 4096
    input_per_mtok = 0.5
    tokenizer = "o200k_base"            # or "hf:/path/to/tokenizer.json", or "anthropic-api"

    [anthropic]
    count_tokens_url = "https://…/v1/messages/count_tokens"   # never called unless set
    api_key_env = "ANTHROPIC_API_KEY"

Other top-level tables belong to later features (`[trim]`, `[pack]`, …) and are kept as raw data
in `Config.sections` for them to validate.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from tokenpilot._exceptions import ConfigError

PROJECT_FILE = "tokenpilot.toml"
MODEL_FIELDS: dict[str, type] = {
    "context_window": int,
    "max_output_tokens": int,
    "input_per_mtok": float,
    "output_per_mtok": float,
    "cache_read_per_mtok": float,
    "cache_write_per_mtok": float,
    "tokenizer": str,
    "provider": str,
}
TOP_LEVEL_SCALARS: dict[str, type] = {"default_model": str, "default_context_window": int}
# Tables owned by other features; validated by them, not here.
FEATURE_TABLES = {"trim", "pack", "compact", "plan", "budget", "ledger", "anthropic", "routing", "serve"}


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """One parsed config file."""

    path: Path
    default_model: str | None = None
    default_context_window: int | None = None
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Config:
    """The user file then the project file, in resolution order (first wins)."""

    files: tuple[ConfigFile, ...] = ()

    @property
    def default_model(self) -> tuple[str, str] | None:
        for f in self.files:
            if f.default_model:
                return f.default_model, str(f.path)
        return None

    @property
    def default_context_window(self) -> tuple[int, str] | None:
        for f in self.files:
            if f.default_context_window:
                return f.default_context_window, str(f.path)
        return None

    def source_of(self, table: str, key: str) -> str:
        """The file that supplied `[table] key` (the user file first, as in `section`), for errors."""
        for f in self.files:
            section = f.sections.get(table)
            if isinstance(section, dict) and key in section:
                return str(f.path)
        return f"[{table}]"

    def section(self, name: str) -> dict[str, Any]:
        """A feature's table, user values over project values (shallow merge)."""
        merged: dict[str, Any] = {}
        for f in reversed(self.files):
            value = f.sections.get(name)
            if isinstance(value, dict):
                merged.update(value)
        return merged


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tokenpilot" / "config.toml"


def find_project_config(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / PROJECT_FILE
        if candidate.is_file():
            return candidate
    return None


def _check_number(value: Any, kind: type, source: str, key: str) -> Any:
    if kind is str:
        if not isinstance(value, str) or not value:
            raise ConfigError("must be a non-empty string", source=source, key=key)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"must be a number, got {value!r}", source=source, key=key)
    if value < 0:
        raise ConfigError(f"must not be negative, got {value!r}", source=source, key=key)
    if kind is int:
        if int(value) != value:
            raise ConfigError(f"must be a whole number, got {value!r}", source=source, key=key)
        return int(value)
    return float(value)


def parse_config_file(path: Path) -> ConfigFile:
    source = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", source=source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", source=source) from None

    scalars: dict[str, Any] = {}
    models: dict[str, dict[str, Any]] = {}
    sections: dict[str, Any] = {}
    for key, value in raw.items():
        if key in TOP_LEVEL_SCALARS:
            scalars[key] = _check_number(value, TOP_LEVEL_SCALARS[key], source, key)
        elif key == "models":
            if not isinstance(value, dict):
                raise ConfigError('must be a table of [models."NAME"]', source=source, key=key)
            for name, spec in value.items():
                if not isinstance(spec, dict):
                    raise ConfigError("must be a table", source=source, key=f"models.{name}")
                checked: dict[str, Any] = {}
                for field_name, field_value in spec.items():
                    dotted = f"models.{name}.{field_name}"
                    if field_name not in MODEL_FIELDS:
                        known = ", ".join(sorted(MODEL_FIELDS))
                        raise ConfigError(f"unknown key (known: {known})", source=source, key=dotted)
                    kind = MODEL_FIELDS[field_name]
                    checked[field_name] = _check_number(field_value, kind, source, dotted)
                models[name] = checked
        elif key in FEATURE_TABLES:
            sections[key] = value
        else:
            known = ", ".join(sorted({*TOP_LEVEL_SCALARS, "models", *FEATURE_TABLES}))
            raise ConfigError(f"unknown key (known: {known})", source=source, key=key)
    return ConfigFile(path=path, models=models, sections=sections, **scalars)


@lru_cache(maxsize=8)
def _load(user: Path | None, project: Path | None, _stamp: tuple[float, ...]) -> Config:
    files = tuple(parse_config_file(p) for p in (user, project) if p is not None)
    return Config(files=files)


def load_config(cwd: Path | None = None) -> Config:
    """The user and project config in force for `cwd`; re-read when a file changes."""
    user = user_config_path()
    user_path = user if user.is_file() else None
    project = find_project_config(cwd)
    stamp = tuple(p.stat().st_mtime_ns for p in (user_path, project) if p is not None)
    return _load(user_path, project, tuple(float(s) for s in stamp))
