"""The `[plan]` and `[routing]` tables of the config, validated, with the defaults filled in.

[plan]
safety_margin = 256          # tokens kept free in the window besides input and output
min_output_tokens = 1024     # less room than this for the answer: compaction is needed
retry_factor = 1.5           # max_tokens growth after a truncated answer
max_attempts = 4
learn_min_samples = 20       # similar past calls needed before learning max_tokens
learn_percentile = 90
learn_margin = 1.2
new_file_tokens = 600        # assumed size of a file to create when unknown
edit_fraction = 0.1          # assumed share of an existing file an edit rewrites

[plan.max_tokens]
tool_call = 300                                         # every complexity
code_generation = { low = 8000, medium = 12000, high = 16000 }

[[plan.prompt_sections]]
name = "testing"
text = "Run the tests with …"                            # or file = "prompts/testing.md"
when = { runs_tests = true }

[routing]
budget_warning = 0.8         # a model whose daily budget is this far spent is skipped
max_wait_seconds = 20        # wait for a rate limit this long; longer: fail over
[routing.tiers]
cheap = "gpt-4o-mini"
standard = "gpt-4o"
strong = "gpt-4.1"
[routing.rules]
tool_call = "cheap"
code_generation = { low = "cheap", medium = "standard", high = "strong" }
[routing.chains]
"gpt-4o-mini" = ["gpt-4o", "gpt-4.1"]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenpilot._config import Config, load_config
from tokenpilot._exceptions import ConfigError
from tokenpilot._plan._task import COMPLEXITIES, TASK_TYPES

# Output tokens per task type and complexity. Tool calls of a coding agent are small (median 85
# tokens in the OpenHands runs of the bench data) but a call that writes a file is not: 300 covers
# ~75% of them, 1,000 ~97%, 2,000 ~99.9% (docs/plan.md).
DEFAULT_MAX_TOKENS: dict[str, dict[str, int]] = {
    "tool_call": {"low": 300, "medium": 1000, "high": 2000},
    "code_generation": {"low": 8000, "medium": 12000, "high": 16000},
    "explanation": {"low": 1000, "medium": 2000, "high": 4000},
    "planning": {"low": 2000, "medium": 4000, "high": 8000},
    "review": {"low": 1500, "medium": 3000, "high": 6000},
    "unknown": {"low": 2000, "medium": 4000, "high": 8000},
}
DEFAULT_TIERS: dict[str, str] = {"cheap": "gpt-4o-mini", "standard": "gpt-4o", "strong": "gpt-4.1"}
DEFAULT_RULES: dict[str, dict[str, str]] = {
    "tool_call": {"low": "cheap", "medium": "cheap", "high": "standard"},
    "code_generation": {"low": "cheap", "medium": "standard", "high": "strong"},
    "explanation": {"low": "cheap", "medium": "standard", "high": "standard"},
    "planning": {"low": "strong", "medium": "strong", "high": "strong"},
    "review": {"low": "standard", "medium": "strong", "high": "strong"},
    "unknown": {"low": "standard", "medium": "standard", "high": "standard"},
}
CONDITIONS = ("creates_files", "edits_files", "runs_tests", "complexity", "task_type")


@dataclass(frozen=True, slots=True)
class SectionSpec:
    """One system-prompt section from the config (text already read)."""

    name: str
    text: str
    when: dict[str, Any] = field(default_factory=dict)
    order: int = 0


@dataclass(frozen=True, slots=True)
class PlanSettings:
    """The validated `[plan]` table."""

    max_tokens: dict[str, dict[str, int]] = field(default_factory=lambda: dict(DEFAULT_MAX_TOKENS))
    safety_margin: int = 256
    min_output_tokens: int = 1024
    retry_factor: float = 1.5
    max_attempts: int = 4
    learn_min_samples: int = 20
    learn_percentile: float = 90.0
    learn_margin: float = 1.2
    new_file_tokens: int = 600
    edit_fraction: float = 0.1
    prompt_sections: tuple[SectionSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class RoutingSettings:
    """The validated `[routing]` table; `configured` is False when the table has no tiers."""

    tiers: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TIERS))
    rules: dict[str, dict[str, str]] = field(default_factory=lambda: dict(DEFAULT_RULES))
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    budget_warning: float = 0.8
    max_wait_seconds: float = 20.0
    configured: bool = False


def _number(
    value: Any, kind: type, source: str, key: str, *, minimum: float = 0, strict: bool = False
) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"must be a number, got {value!r}", source=source, key=key)
    if value < minimum or (strict and value == minimum):
        relation = ">" if strict else ">="
        raise ConfigError(f"must be {relation} {minimum:g}, got {value!r}", source=source, key=key)
    if kind is int:
        if int(value) != value:
            raise ConfigError(f"must be a whole number, got {value!r}", source=source, key=key)
        return int(value)
    return float(value)


def _per_complexity(value: Any, source: str, key: str, check: Any) -> dict[str, Any]:
    """`x` (every complexity) or `{low = x, medium = y, high = z}` (missing ones from medium)."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(COMPLEXITIES))
        if unknown:
            raise ConfigError(
                f"unknown complexity {unknown[0]!r} (known: {', '.join(COMPLEXITIES)})",
                source=source,
                key=f"{key}.{unknown[0]}",
            )
        checked = {c: check(v, source, f"{key}.{c}") for c, v in value.items()}
        return checked
    return dict.fromkeys(COMPLEXITIES, check(value, source, key))


def _task_table(
    value: Any, defaults: Mapping[str, Mapping[str, Any]], source: str, key: str, check: Any
) -> dict[str, dict[str, Any]]:
    """A `[… .TASK_TYPE]` table of per-complexity values over `defaults`, each value `check`ed."""
    if not isinstance(value, dict):
        raise ConfigError("must be a table of task types", source=source, key=key)
    table = {t: dict(v) for t, v in defaults.items()}
    for task_type, spec in value.items():
        if task_type not in TASK_TYPES:
            raise ConfigError(
                f"unknown task type (known: {', '.join(TASK_TYPES)})", source=source, key=f"{key}.{task_type}"
            )
        table[task_type].update(_per_complexity(spec, source, f"{key}.{task_type}", check))
    return table


def _positive_int(value: Any, source: str, key: str) -> int:
    checked: int = _number(value, int, source, key, minimum=1)
    return checked


def _tier_name(value: Any, source: str, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError("must be a tier name", source=source, key=key)
    return value


def _sections(raw: Any, source: str, base: Path | None) -> tuple[SectionSpec, ...]:
    if not isinstance(raw, list):
        raise ConfigError(
            "must be an array of tables ([[plan.prompt_sections]])", source=source, key="plan.prompt_sections"
        )
    specs = []
    for index, item in enumerate(raw):
        key = f"plan.prompt_sections[{index}]"
        if not isinstance(item, dict):
            raise ConfigError("must be a table", source=source, key=key)
        unknown = sorted(set(item) - {"name", "text", "file", "when", "order"})
        if unknown:
            raise ConfigError(
                "unknown key (known: file, name, order, text, when)", source=source, key=f"{key}.{unknown[0]}"
            )
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError("needs a non-empty 'name'", source=source, key=key)
        if ("text" in item) == ("file" in item):
            raise ConfigError("needs exactly one of 'text' or 'file'", source=source, key=key)
        if "text" in item:
            text = item["text"]
            if not isinstance(text, str):
                raise ConfigError("must be a string", source=source, key=f"{key}.text")
        else:
            path = Path(str(item["file"]))
            if not path.is_absolute() and base is not None:
                path = base / path
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"cannot read {path}: {exc}", source=source, key=f"{key}.file") from None
        when = item.get("when", {})
        if not isinstance(when, dict):
            raise ConfigError("must be a table of conditions", source=source, key=f"{key}.when")
        for condition, wanted in when.items():
            if condition not in CONDITIONS:
                raise ConfigError(
                    f"unknown condition (known: {', '.join(CONDITIONS)})",
                    source=source,
                    key=f"{key}.when.{condition}",
                )
            if condition in ("complexity", "task_type"):
                allowed = COMPLEXITIES if condition == "complexity" else TASK_TYPES
                values = [wanted] if isinstance(wanted, str) else wanted
                if not isinstance(values, list) or any(v not in allowed for v in values):
                    raise ConfigError(
                        f"must be one or a list of {', '.join(allowed)}",
                        source=source,
                        key=f"{key}.when.{condition}",
                    )
            elif not isinstance(wanted, bool):
                raise ConfigError("must be true or false", source=source, key=f"{key}.when.{condition}")
        order = _number(item.get("order", 0), int, source, f"{key}.order", minimum=-(10**9))
        specs.append(SectionSpec(name=name, text=text, when=dict(when), order=order))
    return tuple(specs)


def plan_settings(config: Config | None = None) -> PlanSettings:
    """The `[plan]` table, validated; `ConfigError` names the file and the key of a bad value."""
    config = config or load_config()
    raw = config.section("plan")
    known = {
        "max_tokens", "safety_margin", "min_output_tokens", "retry_factor", "max_attempts",
        "learn_min_samples", "learn_percentile", "learn_margin", "new_file_tokens", "edit_fraction",
        "prompt_sections",
    }  # fmt: skip
    values: dict[str, Any] = {}
    for key, value in raw.items():
        source = config.source_of("plan", key)
        if key not in known:
            raise ConfigError(
                f"unknown key (known: {', '.join(sorted(known))})", source=source, key=f"plan.{key}"
            )
        dotted = f"plan.{key}"
        if key == "max_tokens":
            values[key] = _task_table(value, DEFAULT_MAX_TOKENS, source, dotted, _positive_int)
        elif key == "prompt_sections":
            base = Path(source).parent if Path(source).is_file() else None
            values[key] = _sections(value, source, base)
        elif key in ("retry_factor", "learn_margin"):
            values[key] = _number(value, float, source, dotted, minimum=1, strict=True)
        elif key == "learn_percentile":
            values[key] = _number(value, float, source, dotted, minimum=1)
            if values[key] > 100:
                raise ConfigError(f"must be <= 100, got {value!r}", source=source, key=dotted)
        elif key == "edit_fraction":
            values[key] = _number(value, float, source, dotted, minimum=0, strict=True)
            if values[key] > 1:
                raise ConfigError(f"must be <= 1, got {value!r}", source=source, key=dotted)
        else:
            minimum = 1 if key in ("max_attempts", "learn_min_samples", "new_file_tokens") else 0
            values[key] = _number(value, int, source, dotted, minimum=minimum)
    return PlanSettings(**values)


def routing_settings(config: Config | None = None) -> RoutingSettings:
    """The `[routing]` table, validated; tiers and rules default to the built-in ones."""
    config = config or load_config()
    raw = config.section("routing")
    known = {"tiers", "rules", "chains", "budget_warning", "max_wait_seconds"}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        source = config.source_of("routing", key)
        dotted = f"routing.{key}"
        if key not in known:
            raise ConfigError(f"unknown key (known: {', '.join(sorted(known))})", source=source, key=dotted)
        if key == "tiers":
            if not isinstance(value, dict) or not value:
                raise ConfigError("must be a non-empty table of tier = model", source=source, key=dotted)
            for tier, model in value.items():
                if not isinstance(model, str) or not model:
                    raise ConfigError("must be a model name", source=source, key=f"{dotted}.{tier}")
            values["tiers"] = dict(value)
            values["configured"] = True
        elif key == "rules":
            values["rules"] = _task_table(value, DEFAULT_RULES, source, dotted, _tier_name)
        elif key == "chains":
            if not isinstance(value, dict):
                raise ConfigError("must be a table of model = [next models]", source=source, key=dotted)
            chains = {}
            for model, chain in value.items():
                if not isinstance(chain, list) or not all(isinstance(m, str) and m for m in chain):
                    raise ConfigError("must be a list of model names", source=source, key=f"{dotted}.{model}")
                chains[model] = tuple(chain)
            values["chains"] = chains
        elif key == "budget_warning":
            values[key] = _number(value, float, source, dotted, minimum=0, strict=True)
            if values[key] > 1:
                raise ConfigError(
                    f"must be <= 1 (a share of the budget), got {value!r}", source=source, key=dotted
                )
        else:
            values[key] = _number(value, float, source, dotted)
    settings = RoutingSettings(**values)
    for task_type, by_complexity in settings.rules.items():
        for complexity, tier in by_complexity.items():
            if tier not in settings.tiers:
                source = config.source_of("routing", "rules" if "rules" in raw else "tiers")
                raise ConfigError(
                    f"tier {tier!r} is not in [routing.tiers] (known: {', '.join(sorted(settings.tiers))})",
                    source=source,
                    key=f"routing.rules.{task_type}.{complexity}",
                )
    return settings
