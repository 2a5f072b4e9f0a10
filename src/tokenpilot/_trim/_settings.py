"""The `[trim]` table of tokenpilot.toml / the user config, validated.

[trim]
budget = 2000          # default budget when none is given
mode = "auto"          # auto | full | head_tail | errors_only | smart
spill = true           # write the whole output to a file when something is cut
spill_dir = "…"        # default: the user cache dir, …/tokenpilot/trim
spill_ttl_days = 7     # spill files older than this are removed

[trim.tools.pytest]
budget = 800
mode = "smart"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenpilot._config import Config, load_config
from tokenpilot._exceptions import ConfigError
from tokenpilot._trim._result import MODES

DEFAULT_BUDGET = 2000
# Budgets an engineer would give each kind of output when none is configured.
TOOL_BUDGETS: dict[str, int] = {
    "pytest": 1500,
    "unittest": 1500,
    "diagnostics": 1200,
    "traceback": 800,
    "diff": 3000,
    "listing": 800,
    "json": 1500,
    "log": 1500,
}
DEFAULT_TTL_DAYS = 7.0
_TOP_KEYS = {"budget", "mode", "spill", "spill_dir", "spill_ttl_days", "tools"}
_TOOL_KEYS = {"budget", "mode"}


@dataclass(frozen=True, slots=True)
class ToolSettings:
    budget: int | None = None
    mode: str | None = None


@dataclass(frozen=True, slots=True)
class TrimSettings:
    budget: int | None = None
    mode: str | None = None
    spill: bool = True
    spill_dir: Path | None = None
    spill_ttl_days: float = DEFAULT_TTL_DAYS
    tools: dict[str, ToolSettings] = field(default_factory=dict)

    def for_tool(self, tool: str | None, fmt: str | None) -> ToolSettings:
        """Settings of `tool` (by program name, then by format), falling back to the defaults."""
        from tokenpilot._trim._detect import tool_name

        names = [n for n in (tool and tool_name(tool), tool, fmt) if n]
        found = next((self.tools[n] for n in names if n in self.tools), ToolSettings())
        default_budget = next((TOOL_BUDGETS[n] for n in names if n in TOOL_BUDGETS), None)
        budgets = (found.budget, self.budget, default_budget, DEFAULT_BUDGET)
        return ToolSettings(
            budget=next(b for b in budgets if b is not None),
            mode=found.mode or self.mode or "auto",
        )


def _budget(value: Any, source: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"must be a whole number of tokens >= 0, got {value!r}", source=source, key=key)
    return value


def _mode(value: Any, source: str, key: str) -> str:
    if value not in MODES:
        raise ConfigError(f"must be one of {', '.join(MODES)}, got {value!r}", source=source, key=key)
    return str(value)


def _validate(table: Any, source: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError("must be a table", source=source, key="trim")
    checked: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"trim.{key}"
        if key not in _TOP_KEYS:
            raise ConfigError(
                f"unknown key (known: {', '.join(sorted(_TOP_KEYS))})", source=source, key=dotted
            )
        if key == "budget":
            checked[key] = _budget(value, source, dotted)
        elif key == "mode":
            checked[key] = _mode(value, source, dotted)
        elif key == "spill":
            if not isinstance(value, bool):
                raise ConfigError(f"must be true or false, got {value!r}", source=source, key=dotted)
            checked[key] = value
        elif key == "spill_dir":
            if not isinstance(value, str) or not value:
                raise ConfigError("must be a non-empty path", source=source, key=dotted)
            checked[key] = Path(value).expanduser()
        elif key == "spill_ttl_days":
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"must be a number of days > 0, got {value!r}", source=source, key=dotted)
            checked[key] = float(value)
        else:
            checked[key] = _validate_tools(value, source)
    return checked


def _validate_tools(value: Any, source: str) -> dict[str, ToolSettings]:
    if not isinstance(value, dict):
        raise ConfigError("must be a table of [trim.tools.NAME]", source=source, key="trim.tools")
    tools: dict[str, ToolSettings] = {}
    for name, spec in value.items():
        where = f"trim.tools.{name}"
        if not isinstance(spec, dict):
            raise ConfigError("must be a table", source=source, key=where)
        for key in spec:
            if key not in _TOOL_KEYS:
                known = ", ".join(sorted(_TOOL_KEYS))
                raise ConfigError(f"unknown key (known: {known})", source=source, key=f"{where}.{key}")
        budget = _budget(spec["budget"], source, f"{where}.budget") if "budget" in spec else None
        mode = _mode(spec["mode"], source, f"{where}.mode") if "mode" in spec else None
        tools[str(name).lower()] = ToolSettings(budget=budget, mode=mode)
    return tools


def trim_settings(config: Config | None = None) -> TrimSettings:
    """The validated `[trim]` settings: the user file's values over the project file's, per key
    (and per tool for `[trim.tools.*]`)."""
    config = config or load_config()
    merged: dict[str, Any] = {}
    tools: dict[str, ToolSettings] = {}
    for config_file in reversed(config.files):  # project first, then the user file overrides
        if "trim" not in config_file.sections:
            continue
        checked = _validate(config_file.sections["trim"], str(config_file.path))
        for name, spec in checked.pop("tools", {}).items():
            old = tools.get(name, ToolSettings())
            tools[name] = ToolSettings(
                budget=old.budget if spec.budget is None else spec.budget,
                mode=old.mode if spec.mode is None else spec.mode,
            )
        merged.update(checked)
    return TrimSettings(tools=tools, **merged)
