"""Ledger records: one per call, append-only, written in the same transaction as its settlement.

A record is made of a `Call` (who made it and what was reserved, known at `reserve`) and a
`CallUsage` (what it used and how it ended, known at `settle`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from tokenpilot._exceptions import InputError

# Finish reasons that mean the output hit max_tokens (OpenAI, Anthropic, Gemini spellings).
TRUNCATION_REASONS = frozenset({"length", "max_tokens", "max_output_tokens", "MAX_TOKENS"})
# "cancelled": the client went away mid-call; "expired": the hold outlived its TTL and was reclaimed.
STATUSES = ("ok", "error", "rate_limited", "cancelled", "released", "expired")


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """One call to a model, as the ledger keeps it.

    Token convention: `input_tokens` counts every prompt token, cached ones included;
    `cache_read_tokens` and `cache_write_tokens` are the parts of it read from / written to the
    provider's prompt cache; `reasoning_tokens` are the part of `output_tokens` spent thinking.
    `cost_usd` is None when the model's price is unknown — never 0. `usage_estimated` is True when
    the provider reported no usage and the tokens are tokenpilot's own count. `max_tokens` is what was
    sent to the provider, `max_tokens_requested` what the client asked for; `optimized_from` and
    `optimized_to` are the prompt's tokens before and after the proxy rewrote it (`optimize_actions`
    says how); `ttft_s` is the time to the first token of a stream.
    """

    id: int
    ts: float
    scope: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    max_tokens: int | None = None
    output_utilization: float | None = None
    finish_reason: str | None = None
    truncated: bool = False
    cost_usd: float | None = None
    latency_s: float | None = None
    attempt: int = 1
    status: str = "ok"
    error: str | None = None
    phase: str | None = None
    agent: str | None = None
    task_type: str | None = None
    provider: str | None = None
    request_id: str | None = None
    reservation_id: str | None = None
    source: str = "live"
    session: str | None = None
    http_status: int | None = None
    ttft_s: float | None = None
    usage_estimated: bool = False
    max_tokens_requested: int | None = None
    optimized_from: int | None = None
    optimized_to: int | None = None
    optimize_actions: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def price_known(self) -> bool:
        return self.cost_usd is not None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


RECORD_FIELDS = tuple(f.name for f in fields(LedgerRecord))


@dataclass(frozen=True, slots=True)
class Call:
    """Who made a call and what was sent: the identity a reservation holds and its record keeps."""

    scope: str
    model: str
    max_tokens: int | None = None  # what was sent to the provider
    attempt: int = 1
    phase: str | None = None
    agent: str | None = None
    task_type: str | None = None
    session: str | None = None
    provider: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class CallUsage:
    """What a finished, failed or cancelled call used and how it went (from the provider, else counted)."""

    input_tokens: int
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    finish_reason: str | None = None
    status: str = "ok"
    error: str | None = None
    latency_s: float | None = None
    provider: str | None = None
    request_id: str | None = None
    http_status: int | None = None
    ttft_s: float | None = None
    usage_estimated: bool = False
    max_tokens_requested: int | None = None
    optimized_from: int | None = None
    optimized_to: int | None = None
    optimize_actions: str | None = None

    def _plainly_valid(self) -> bool:
        """The usual usage (plain ints and floats, a known status) passes every check below, in one go."""
        return (
            type(self.input_tokens) is int
            and type(self.output_tokens) is int
            and type(self.cache_read_tokens) is int
            and type(self.cache_write_tokens) is int
            and type(self.reasoning_tokens) is int
            and type(self.usage_estimated) is bool
            and self.output_tokens >= 0
            and self.cache_read_tokens >= 0
            and self.cache_write_tokens >= 0
            and self.cache_read_tokens + self.cache_write_tokens <= self.input_tokens
            and self.status in STATUSES
            and _count_or_none(self.http_status)
            and _count_or_none(self.max_tokens_requested)
            and _count_or_none(self.optimized_from)
            and _count_or_none(self.optimized_to)
            and _seconds_or_none(self.latency_s)
            and _seconds_or_none(self.ttft_s)
        )

    def __post_init__(self) -> None:
        if not self._plainly_valid():
            self._check()

    def _check(self) -> None:
        """Raise `InputError` naming the first field out of range."""
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"{name} must be a non-negative whole number, got {value!r}")
        for name in ("http_status", "max_tokens_requested", "optimized_from", "optimized_to"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise InputError(f"{name} must be a non-negative whole number or None, got {value!r}")
        for name in ("latency_s", "ttft_s"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0
            ):
                raise InputError(f"{name} must be non-negative seconds or None, got {value!r}")
        if not isinstance(self.usage_estimated, bool):
            raise InputError(f"usage_estimated must be True or False, got {self.usage_estimated!r}")
        if self.status not in STATUSES:
            raise InputError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")
        if isinstance(self.reasoning_tokens, bool) or not isinstance(self.reasoning_tokens, int):
            raise InputError(f"reasoning_tokens must be a whole number, got {self.reasoning_tokens!r}")
        if self.cache_read_tokens + self.cache_write_tokens > self.input_tokens:
            raise InputError(
                "cache_read_tokens + cache_write_tokens exceed input_tokens: input_tokens counts every "
                "prompt token, cached ones included"
            )


def _count_or_none(value: object) -> bool:
    return value is None or (type(value) is int and value >= 0)


def _seconds_or_none(value: object) -> bool:
    return value is None or (type(value) in (float, int) and value >= 0)  # type: ignore[operator]


def record_values(
    call: Call,
    usage: CallUsage,
    *,
    ts: float,
    cost: float | None,
    source: str,
    reservation_id: str | None = None,
    provider: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The columns of the call's record (all but `id`); `provider` is the model's, when neither says."""
    return {
        "ts": ts,
        "scope": call.scope,
        "phase": call.phase,
        "agent": call.agent,
        "task_type": call.task_type,
        "model": call.model,
        "provider": usage.provider or call.provider or provider,
        "request_id": usage.request_id or call.request_id,
        "reservation_id": reservation_id,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "max_tokens": call.max_tokens,
        "output_utilization": utilization(usage.output_tokens, call.max_tokens),
        "finish_reason": usage.finish_reason,
        "truncated": is_truncation(usage.finish_reason),
        "cost_usd": cost,
        "latency_s": usage.latency_s,
        "attempt": call.attempt,
        "status": usage.status,
        "error": usage.error if error is None else error,
        "source": source,
        "session": call.session,
        "http_status": usage.http_status,
        "ttft_s": usage.ttft_s,
        "usage_estimated": usage.usage_estimated,
        "max_tokens_requested": usage.max_tokens_requested,
        "optimized_from": usage.optimized_from,
        "optimized_to": usage.optimized_to,
        "optimize_actions": usage.optimize_actions,
    }


def record_from_row(row: Any) -> LedgerRecord:
    """A `LedgerRecord` from a row mapping of `tp_records`."""
    values = {name: row[name] for name in RECORD_FIELDS}
    values["truncated"] = bool(values["truncated"])
    values["usage_estimated"] = bool(values["usage_estimated"])
    values["id"] = int(values["id"])
    return LedgerRecord(**values)


def is_truncation(finish_reason: str | None) -> bool:
    return finish_reason is not None and (
        finish_reason in TRUNCATION_REASONS or finish_reason.lower() in TRUNCATION_REASONS
    )


def utilization(output_tokens: int, max_tokens: int | None) -> float | None:
    """Output tokens over max_tokens (None when max_tokens is unknown or zero)."""
    if not max_tokens:
        return None
    return output_tokens / max_tokens
