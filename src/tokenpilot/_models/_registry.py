"""The model registry: limits, prices and tokenizer of a model, each field from the first source
that knows it.

Resolution chain, per field, first match wins:

1. environment  `TOKENPILOT_MODEL_<FIELD>_<NAME>` (NAME upper-cased, non-alphanumerics -> `_`):
                LIMIT (context window), MAX_OUTPUT, INPUT_PRICE, OUTPUT_PRICE, CACHE_READ_PRICE,
                CACHE_WRITE_PRICE (USD per million tokens), TOKENIZER
2. user config  `~/.config/tokenpilot/config.toml`, `[models."NAME"]`
3. project config `tokenpilot.toml` (searched upward from the working directory)
4. bundled data exact name, then without a provider prefix (`openai/gpt-4o`), then without a
                date or `-latest` suffix (`gpt-4o-2024-08-06`), then a Claude model's family
                (`claude-sonnet-4-7` -> the nearest newer sonnet, labelled `family:NAME`)
5. name rules   model families: window, max output, tokenizer, provider; never a price
6. defaults     `default_context_window` (config) or 128,000; prices unknown (None)
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from tokenpilot._config import Config, load_config
from tokenpilot._exceptions import ConfigError

DEFAULT_MODEL = "gpt-4o"
DEFAULT_CONTEXT_WINDOW = 128_000
PRICE_FIELDS = ("input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok")
FIELDS = ("provider", "context_window", "max_output_tokens", *PRICE_FIELDS, "tokenizer")
ENV_NAMES = {
    "context_window": "LIMIT",
    "max_output_tokens": "MAX_OUTPUT",
    "input_per_mtok": "INPUT_PRICE",
    "output_per_mtok": "OUTPUT_PRICE",
    "cache_read_per_mtok": "CACHE_READ_PRICE",
    "cache_write_per_mtok": "CACHE_WRITE_PRICE",
    "tokenizer": "TOKENIZER",
}
log = logging.getLogger(__name__)
# Claude names put the version before the tier (claude-3-5-sonnet) or after it (claude-sonnet-4-5).
_CLAUDE = re.compile(
    r"^claude-(?:(?P<v1>\d+(?:[-.]\d+)?)-(?P<t1>opus|sonnet|haiku)|(?P<t2>opus|sonnet|haiku)-(?P<v2>\d+(?:[-.]\d+)?))$"
)
_DATE_SUFFIX = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|@\d{8}|-\d{4}|-latest|:latest)$")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What tokenpilot knows of a model, and where each field came from (`sources`)."""

    name: str
    provider: str | None
    context_window: int
    max_output_tokens: int | None
    input_per_mtok: float | None
    output_per_mtok: float | None
    cache_read_per_mtok: float | None
    cache_write_per_mtok: float | None
    tokenizer: str
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def price_known(self) -> bool:
        """True when input and output prices are known; cache prices may still be None."""
        return self.input_per_mtok is not None and self.output_per_mtok is not None

    @property
    def exact(self) -> bool:
        """Whether token counts for this model are exact (not an estimate)."""
        return not self.tokenizer.startswith("estimate:")

    def cost(
        self,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> float | None:
        """USD for a call; None when a needed price is unknown (never 0 for unknown).

        `input_tokens` are the uncached input tokens; cache reads and writes are billed at their
        own prices (falling back to the input price when the provider has no separate one).
        """
        if not self.price_known:
            return None
        assert self.input_per_mtok is not None and self.output_per_mtok is not None
        read = self.cache_read_per_mtok if self.cache_read_per_mtok is not None else self.input_per_mtok
        write = self.cache_write_per_mtok if self.cache_write_per_mtok is not None else self.input_per_mtok
        total = (
            input_tokens * self.input_per_mtok
            + output_tokens * self.output_per_mtok
            + cache_read_tokens * read
            + cache_write_tokens * write
        )
        return total / 1_000_000

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `tokenpilot models show --json`."""
        return {
            "name": self.name,
            "provider": self.provider,
            "context_window": self.context_window,
            "max_output_tokens": self.max_output_tokens,
            "input_per_mtok": self.input_per_mtok,
            "output_per_mtok": self.output_per_mtok,
            "cache_read_per_mtok": self.cache_read_per_mtok,
            "cache_write_per_mtok": self.cache_write_per_mtok,
            "price_known": self.price_known,
            "tokenizer": self.tokenizer,
            "exact": self.exact,
            "sources": dict(self.sources),
        }


# Family rules: (pattern on the bare lower-cased name, facts). Window, output and tokenizer only.
_RULES: tuple[tuple[re.Pattern[str], dict[str, Any]], ...] = tuple(
    (re.compile(pattern), facts)
    for pattern, facts in (
        (
            r"^(gpt-4o|chatgpt-4o)",
            {"provider": "openai", "context_window": 128_000, "tokenizer": "o200k_base"},
        ),
        (r"^gpt-4\.1", {"provider": "openai", "context_window": 1_047_576, "tokenizer": "o200k_base"}),
        (r"^gpt-5", {"provider": "openai", "context_window": 272_000, "tokenizer": "o200k_base"}),
        (r"^gpt-oss", {"provider": "openai", "context_window": 131_072, "tokenizer": "o200k_base"}),
        (r"^o\d", {"provider": "openai", "context_window": 200_000, "tokenizer": "o200k_base"}),
        (
            r"^gpt-4-(turbo|\d{4}-preview)",
            {"provider": "openai", "context_window": 128_000, "tokenizer": "cl100k_base"},
        ),
        (r"^gpt-4-32k", {"provider": "openai", "context_window": 32_768, "tokenizer": "cl100k_base"}),
        (r"^gpt-4", {"provider": "openai", "context_window": 8_192, "tokenizer": "cl100k_base"}),
        (r"^gpt-3\.5", {"provider": "openai", "context_window": 16_385, "tokenizer": "cl100k_base"}),
        (
            r"^text-embedding-3|^text-embedding-ada",
            {"provider": "openai", "context_window": 8_191, "tokenizer": "cl100k_base"},
        ),
        (r"claude", {"provider": "anthropic", "context_window": 200_000, "tokenizer": "estimate:claude"}),
        (
            r"gemini|gemma",
            {"provider": "google", "context_window": 1_048_576, "tokenizer": "estimate:gemini"},
        ),
        (r"llama", {"provider": "meta", "context_window": 128_000, "tokenizer": "estimate:llama"}),
        (r"qwen|qwq", {"provider": "qwen", "context_window": 131_072, "tokenizer": "estimate:qwen"}),
        (
            r"mistral|mixtral|codestral|devstral|magistral|ministral|pixtral",
            {"provider": "mistral", "context_window": 128_000, "tokenizer": "estimate:mistral"},
        ),
        (r"deepseek", {"provider": "deepseek", "context_window": 128_000, "tokenizer": "estimate:deepseek"}),
        (r"grok", {"provider": "xai", "context_window": 131_072, "tokenizer": "estimate:grok"}),
    )
)


def env_key(name: str) -> str:
    """`gpt-4o` -> `GPT_4O`: upper-cased, every non-alphanumeric character replaced by `_`."""
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


@cache
def bundled_data() -> dict[str, Any]:
    """The bundled registry: {"source", "date", "models": {name: facts}}.

    `models.json` (generated from LiteLLM's map) plus `retired.json`: retired models LiteLLM no
    longer lists, with the prices their provider still publishes (so `claude-opus-4-1` is billed at
    its own $15/$75, not at a newer Opus's price). The generated file wins where both have a name.
    """
    folder = Path(__file__).parent / "data"
    data: dict[str, Any] = json.loads((folder / "models.json").read_text("utf-8"))
    retired: dict[str, Any] = json.loads((folder / "retired.json").read_text("utf-8"))
    data["models"] = {**retired["models"], **data["models"]}
    return data


def _bundled_entry(name: str) -> tuple[str, dict[str, Any]] | None:
    models: dict[str, dict[str, Any]] = bundled_data()["models"]
    candidates = [name, name.lower()]
    bare = name.rsplit("/", 1)[-1]
    candidates += [bare, bare.lower()]
    undated = _DATE_SUFFIX.sub("", bare.lower())
    candidates.append(undated)
    for candidate in candidates:
        if candidate in models:
            return candidate, models[candidate]
    family = claude_family(undated)
    return (family, models[family]) if family else None


def _claude_version(name: str) -> tuple[str, tuple[int, ...]] | None:
    match = _CLAUDE.match(name)
    if match is None:
        return None
    tier = match.group("t1") or match.group("t2")
    version = match.group("v1") or match.group("v2")
    return tier, tuple(int(part) for part in re.split(r"[-.]", version))


@cache
def claude_family(name: str) -> str | None:
    """The bundled Claude model of the same tier nearest to `name` (undated): the first newer
    version; None when there is none, when `name` is not a Claude tier name, or when it is bundled.

    >>> claude_family("claude-sonnet-4-7"), claude_family("claude-opus-4-1")
    ('claude-sonnet-5', None)
    """
    wanted = _claude_version(name)
    if wanted is None or name in bundled_data()["models"]:
        return None
    tier, version = wanted
    bundled: list[str] = list(bundled_data()["models"])
    same_tier = sorted(
        (parsed[1], candidate)
        for candidate in bundled
        if (parsed := _claude_version(candidate)) is not None and parsed[0] == tier
    )
    if not same_tier:
        return None
    newer = [candidate for v, candidate in same_tier if v >= version]
    # A name newer than every bundled model of its tier stays unknown: its price is not guessed.
    return newer[0] if newer else None


def _squeezed(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@cache
def suggest_model(name: str) -> str | None:
    """The bundled model name closest to `name` (a typo, a missing dash), or None.

    >>> suggest_model("gpt4o"), suggest_model("claude-sonet-4-5")
    ('gpt-4o', 'claude-sonnet-4-5')
    """
    names: dict[str, str] = {_squeezed(n): n for n in sorted(bundled_data()["models"], reverse=True)}
    close = difflib.get_close_matches(_squeezed(name.rsplit("/", 1)[-1]), list(names), n=1, cutoff=0.75)
    return names[close[0]] if close else None


@cache
def _warn_unknown(name: str) -> None:
    """Once per name: an unknown model still works (an estimate), but a typo should be seen."""
    guess = suggest_model(name)
    hint = f", did you mean {guess}?" if guess else ""
    log.warning("unknown model %r%s (counting with an estimate, prices unknown)", name, hint)


def _rule_facts(name: str) -> dict[str, Any]:
    bare = name.rsplit("/", 1)[-1].lower()
    for pattern, facts in _RULES:
        if pattern.search(bare):
            return facts
    return {}


def _parse_env(field_name: str, raw: str, variable: str) -> Any:
    if field_name == "tokenizer":
        return raw
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"must be a number, got {raw!r}", source=f"${variable}") from None
    if value < 0:
        raise ConfigError(f"must not be negative, got {raw!r}", source=f"${variable}")
    if field_name in ("context_window", "max_output_tokens"):
        if value != int(value):
            raise ConfigError(f"must be a whole number, got {raw!r}", source=f"${variable}")
        return int(value)
    return value


def default_model_name(config: Config | None = None) -> str:
    """`TOKENPILOT_MODEL`, then `default_model` in the user or project config, then gpt-4o."""
    from_env = os.environ.get("TOKENPILOT_MODEL")
    if from_env:
        return from_env
    chosen = (config or load_config()).default_model
    return chosen[0] if chosen else DEFAULT_MODEL


def get_model(name: str | None = None, *, config: Config | None = None) -> ModelInfo:
    """Everything known about a model, each field from the first source that has it.

    >>> m = get_model("gpt-4o")
    >>> m.context_window, m.sources["context_window"], m.tokenizer
    (128000, 'data', 'o200k_base')
    """
    config = config or load_config()
    name = name or default_model_name(config)
    key = env_key(name)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    def offer(field_name: str, value: Any, source: str) -> None:
        if value is not None and field_name not in values:
            values[field_name] = value
            sources[field_name] = source

    for field_name, env_name in ENV_NAMES.items():
        variable = f"TOKENPILOT_MODEL_{env_name}_{key}"
        raw = os.environ.get(variable)
        if raw:
            offer(field_name, _parse_env(field_name, raw, variable), f"env:{variable}")
    for config_file in config.files:
        spec = config_file.models.get(name)
        for field_name, value in (spec or {}).items():
            offer(field_name, value, f"config:{config_file.path}")
    entry = _bundled_entry(name)
    if entry is not None:
        matched, facts = entry
        label = "data" if matched == name else f"data:{matched}"
        if matched == claude_family(_DATE_SUFFIX.sub("", name.rsplit("/", 1)[-1].lower())):
            label = f"family:{matched}"
        for field_name in FIELDS:
            offer(field_name, facts.get(field_name), label)
    for field_name, value in _rule_facts(name).items():
        offer(field_name, value, "rule")
    if not values:
        _warn_unknown(name)
    window = config.default_context_window
    offer("context_window", window[0] if window else DEFAULT_CONTEXT_WINDOW, "default")
    offer("tokenizer", "estimate:unknown", "default")
    for field_name in FIELDS:
        sources.setdefault(field_name, "unknown")
    return ModelInfo(
        name=name,
        provider=values.get("provider"),
        context_window=values["context_window"],
        max_output_tokens=values.get("max_output_tokens"),
        input_per_mtok=values.get("input_per_mtok"),
        output_per_mtok=values.get("output_per_mtok"),
        cache_read_per_mtok=values.get("cache_read_per_mtok"),
        cache_write_per_mtok=values.get("cache_write_per_mtok"),
        tokenizer=values["tokenizer"],
        sources=sources,
    )


def list_models(provider: str | None = None, *, config: Config | None = None) -> list[ModelInfo]:
    """Every bundled or configured model (optionally of one provider), resolved, sorted by name."""
    config = config or load_config()
    names = set(bundled_data()["models"])
    for config_file in config.files:
        names.update(config_file.models)
    infos = [get_model(n, config=config) for n in sorted(names)]
    if provider:
        infos = [m for m in infos if (m.provider or "").lower() == provider.lower()]
    return infos
