"""When to reset a long agent session (and start the next phase from a hand-off): configured rules.

    [lifecycle]
    reset_after_tokens = 150000     # the prompt reaches this many tokens (<= 1: a share of the window)
    reset_after_messages = 50       # the conversation has this many messages (0: never)
    reset_on_phase_end = true       # the caller says a phase (planning, exploring…) has ended

`should_reset(messages, phase_ended=…)` applies them in that order of precedence (phase end, then
tokens, then messages) and says which one fired.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tokenpilot._config import load_config
from tokenpilot._exceptions import ConfigError
from tokenpilot._messages import parse, render
from tokenpilot._models import get_model
from tokenpilot._tokens import count_messages, tokenizer_for

RULES = ("reset_on_phase_end", "reset_after_tokens", "reset_after_messages")


@dataclass(frozen=True, slots=True)
class LifecycleSettings:
    """The `[lifecycle]` rules: token and message thresholds (0 turns one off), and the phase rule."""

    reset_after_tokens: float = 150_000
    reset_after_messages: int = 50
    reset_on_phase_end: bool = True

    def token_limit(self, context_window: int) -> int | None:
        """The token threshold for a model: a share (<= 1) of its window, or tokens; None when off."""
        value = self.reset_after_tokens
        if value <= 0:
            return None
        return int(value * context_window) if value <= 1 else int(value)


def lifecycle_settings() -> LifecycleSettings:
    """The `[lifecycle]` table of the config in force, each key checked (a `ConfigError` names it)."""
    config = load_config()
    values: dict[str, Any] = {}
    for key, value in config.section("lifecycle").items():
        source = config.source_of("lifecycle", key)
        if key == "reset_on_phase_end":
            if not isinstance(value, bool):
                raise ConfigError("must be true or false", source=source, key=f"lifecycle.{key}")
        elif key == "reset_after_tokens":
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(
                    "must be a number of tokens >= 0 (or a share of the window <= 1)",
                    source=source,
                    key=f"lifecycle.{key}",
                )
        elif key == "reset_after_messages":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError("must be a whole number >= 0", source=source, key=f"lifecycle.{key}")
        else:
            known = ", ".join(RULES)
            raise ConfigError(f"unknown key (known: {known})", source=source, key=f"lifecycle.{key}")
        values[key] = value
    return LifecycleSettings(**values)


@dataclass(frozen=True, slots=True)
class ResetDecision:
    """Whether to reset now, the rule that fired (None when none did), and the numbers it read."""

    reset: bool
    rule: str | None
    reason: str
    tokens: int
    messages: int
    token_limit: int | None
    message_limit: int | None
    tokenizer: str
    exact: bool

    def report(self) -> dict[str, Any]:
        """The JSON shape of the decision."""
        return {
            "reset": self.reset,
            "rule": self.rule,
            "reason": self.reason,
            "tokens": self.tokens,
            "messages": self.messages,
            "token_limit": self.token_limit,
            "message_limit": self.message_limit,
            "tokenizer": self.tokenizer,
            "exact": self.exact,
        }


def should_reset(messages: Any, *, phase_ended: bool = False, model: str | None = None) -> ResetDecision:
    """Apply the `[lifecycle]` rules to a conversation (messages array or request body).

    >>> decision = should_reset([{"role": "user", "content": "plan it"}], phase_ended=True)
    >>> decision.reset, decision.rule
    (True, 'reset_on_phase_end')
    >>> should_reset([{"role": "user", "content": "plan it"}]).reset
    False
    """
    settings = lifecycle_settings()
    conversation = parse(messages)
    body_model = conversation.body.get("model")
    info = get_model(model or (body_model if isinstance(body_model, str) else None))
    tokenizer = tokenizer_for(info.name)
    tokens = count_messages(render(conversation), model=info.name)
    count = len(conversation.messages)
    token_limit = settings.token_limit(info.context_window)
    message_limit = settings.reset_after_messages or None
    rule: str | None = None
    if phase_ended and settings.reset_on_phase_end:
        rule, reason = "reset_on_phase_end", "the phase ended (reset_on_phase_end)"
    elif token_limit is not None and tokens >= token_limit:
        rule = "reset_after_tokens"
        reason = f"the prompt has {tokens:,} tokens, at or past reset_after_tokens {token_limit:,}"
    elif message_limit is not None and count >= message_limit:
        rule = "reset_after_messages"
        reason = f"the conversation has {count:,} messages, at or past reset_after_messages {message_limit:,}"
    else:
        limits = [f"{tokens:,} of {token_limit:,} tokens" if token_limit else f"{tokens:,} tokens"]
        limits.append(f"{count:,} of {message_limit:,} messages" if message_limit else f"{count:,} messages")
        ended = "; the phase ended but reset_on_phase_end is off" if phase_ended else ""
        reason = f"no rule fired ({', '.join(limits)}){ended}"
    return ResetDecision(
        reset=rule is not None,
        rule=rule,
        reason=reason,
        tokens=tokens,
        messages=count,
        token_limit=token_limit,
        message_limit=message_limit,
        tokenizer=tokenizer.name,
        exact=tokenizer.exact,
    )
