"""Settings of a compaction: thresholds, prices, presets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from tokenpilot._exceptions import ConfigError, InputError

STEPS = ("clamp", "prune", "dedupe", "mask", "window")


@dataclass(frozen=True, slots=True)
class Pricing:
    """Input prices of a model, any unit (USD per million tokens, or 1.0 = one input token).

    `cache_read` / `cache_write` default to `input` (no cache). `min_cached_prefix`: shorter
    common prefixes are not cached (OpenAI: 1,024 tokens).

    >>> Pricing.for_model("claude-sonnet-4-5").cache_read
    0.3
    """

    input: float
    cache_read: float
    cache_write: float
    min_cached_prefix: int = 0

    @classmethod
    def for_model(cls, model: str | None) -> Pricing:
        """The registry's prices for `model`; a flat 1.0 per token when they are unknown."""
        from tokenpilot._models import get_model

        info = get_model(model)
        if info.input_per_mtok is None:
            return NO_CACHE
        read = info.cache_read_per_mtok if info.cache_read_per_mtok is not None else info.input_per_mtok
        write = info.cache_write_per_mtok if info.cache_write_per_mtok is not None else info.input_per_mtok
        # OpenAI caches automatically from 1,024 tokens; Anthropic's minimum is also ~1,024.
        return cls(info.input_per_mtok, read, write, 1_024 if info.provider == "openai" else 0)

    @property
    def has_cache(self) -> bool:
        return self.cache_read < self.input


NO_CACHE = Pricing(1.0, 1.0, 1.0, 0)


@dataclass(frozen=True, slots=True)
class Settings:
    """Thresholds. Fractions (<= 1) are of the budget; larger numbers are tokens.

    - trigger: compact when the prompt reaches this (default 0.8);
    - target: a compaction reduces the prompt to at most this (default 0.5);
    - hard_limit: never return more than this (default 1.0, the budget itself);
    - keep_last: tool results kept verbatim at the end (default 10);
    - batch: mask only once this many results are maskable (default 1; the cost model decides);
    - clamp: largest tool output kept whole, tokens or fraction of the budget (default 1,500,
      and never over a quarter of the target); a tool's own `[trim.tools.NAME] budget` is used
      when it is smaller;
    - index: a masked output's marker lists the names it mentioned (paths, identifiers, short
      strings) in up to this share of its tokens (default 0.5; 0 turns it off), at most
      `index_max` tokens (default 800);
    - clamp_index: a clamped output lists the names of its elided part in up to this share of
      the clamp's budget (default 0.2);
    - spill: a clamped output is kept whole in the spill store and its marker names the handle
      (`tokenpilot spill show HANDLE`; default False, the proxy turns it on);
    - min_mask_tokens: outputs smaller than this are never masked (default 128: masking them saves little and
      loses what later turns refer to);
    - horizon: turns a compaction is expected to pay back over (default None: as many turns as
      the conversation has had so far, at least 8);
    - keep_exchanges: when windowing, at most this many recent exchanges are kept (default None:
      as many as fit the target);
    - voluntary: compact below the trigger when the cost model says it pays (default True);
    - payback: a voluntary compaction must be expected to save this many times what its rewrite
      costs (default 4.0: the horizon is a guess, and a masked output may have to be read again);
    - enabled: the off switch (default True);
    - interrupt_dangling: answer a trailing unanswered tool call with an "interrupted" result.
    """

    trigger: float = 0.8
    target: float = 0.5
    hard_limit: float = 1.0
    keep_last: int = 5
    batch: int = 1
    clamp: float = 1_500
    min_mask_tokens: int = 128
    index: float = 0.5
    index_max: int = 800
    clamp_index: float = 0.2
    spill: bool = False
    horizon: int | None = None
    keep_exchanges: int | None = None
    voluntary: bool = True
    payback: float = 4.0
    enabled: bool = True
    interrupt_dangling: bool = False

    def tokens(self, value: float, budget: int) -> int:
        """A threshold in tokens: fractions of `budget`, or a token count as is."""
        return int(value * budget) if value <= 1 else int(value)

    def updated(self, values: Mapping[str, Any], source: str = "arguments") -> Settings:
        """A copy with `values` applied, each checked."""
        names = {f.name: f for f in fields(self)}
        clean: dict[str, Any] = {}
        for key, value in values.items():
            if value is None and key not in ("horizon", "keep_exchanges"):
                continue
            if key not in names:
                known = ", ".join(sorted(names))
                raise _error(source, key, f"unknown compact setting (known: {known})")
            current = getattr(self, key)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise _error(source, key, "must be true or false")
            elif key in ("horizon", "keep_exchanges"):
                if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                    raise _error(source, key, "must be a whole number of turns >= 0")
            elif isinstance(current, int) and key not in (
                "trigger",
                "target",
                "hard_limit",
                "clamp",
                "payback",
                "index",
                "clamp_index",
            ):
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise _error(source, key, "must be a whole number >= 0")
            elif key in ("index", "clamp_index"):
                if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
                    raise _error(source, key, "must be a share of the output between 0 and 1")
            elif not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise _error(source, key, "must be a positive number (fraction <= 1, or tokens)")
            clean[key] = value
        return replace(self, **clean)


def _error(source: str, key: str, message: str) -> Exception:
    if source == "arguments":
        return InputError(f"{key}: {message}")
    return ConfigError(message, source=source, key=key)


@dataclass(frozen=True, slots=True)
class Preset:
    """A named policy: which steps run, with which settings."""

    name: str
    steps: tuple[str, ...]
    settings: Settings


PRESETS: dict[str, Preset] = {
    "default": Preset("default", ("clamp", "dedupe", "mask", "window"), Settings()),
    # Compaction at 30% of the window, refuse at 50%, about 15k tokens kept, last 4 exchanges.
    "aggressive": Preset(
        "aggressive",
        ("clamp", "prune", "dedupe", "mask", "window"),
        Settings(trigger=0.3, hard_limit=0.5, target=15_000, keep_last=4, keep_exchanges=4),
    ),
    "mask-only": Preset("mask-only", ("clamp", "mask"), Settings()),
    "window-only": Preset("window-only", ("window",), Settings(voluntary=False)),
}


def resolve_policy(policy: str | Preset) -> Preset:
    """A preset by name (or a `Preset` as given)."""
    if isinstance(policy, Preset):
        unknown = [s for s in policy.steps if s not in STEPS]
        if unknown:
            raise InputError(f"unknown compaction step(s) {unknown} (known: {', '.join(STEPS)})")
        return policy
    if policy not in PRESETS:
        raise InputError(f"unknown policy {policy!r} (known: {', '.join(PRESETS)})")
    return PRESETS[policy]
