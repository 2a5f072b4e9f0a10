"""Ledger records: one per call, append-only, written in the same transaction as its settlement."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

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


def is_truncation(finish_reason: str | None) -> bool:
    return finish_reason is not None and (
        finish_reason in TRUNCATION_REASONS or finish_reason.lower() in TRUNCATION_REASONS
    )


def utilization(output_tokens: int, max_tokens: int | None) -> float | None:
    """Output tokens over max_tokens (None when max_tokens is unknown or zero)."""
    if not max_tokens:
        return None
    return output_tokens / max_tokens
