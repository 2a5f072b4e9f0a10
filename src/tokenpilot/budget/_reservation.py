"""A reservation: tokens (and dollars) held against every enclosing budget for one call."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from tokenpilot._exceptions import InputError, TokenpilotError

if TYPE_CHECKING:
    from tokenpilot.ledger._records import LedgerRecord

log = logging.getLogger("tokenpilot.budget")
log.addHandler(logging.NullHandler())  # a library logs; the application decides what is shown


@dataclass(frozen=True, slots=True)
class CallUsage:
    """What the provider reported for a finished (or failed) call."""

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

    def __post_init__(self) -> None:
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
        from tokenpilot.ledger._records import STATUSES

        if self.status not in STATUSES:
            raise InputError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")
        if isinstance(self.reasoning_tokens, bool) or not isinstance(self.reasoning_tokens, int):
            raise InputError(f"reasoning_tokens must be a whole number, got {self.reasoning_tokens!r}")
        if self.cache_read_tokens + self.cache_write_tokens > self.input_tokens:
            raise InputError(
                "cache_read_tokens + cache_write_tokens exceed input_tokens: input_tokens counts every "
                "prompt token, cached ones included"
            )


class _Owner(Protocol):
    def _finish(self, reservation: Reservation, usage: CallUsage) -> LedgerRecord: ...


class Reservation:
    """Held capacity for one call; settle it with the real usage, or leave the block to release it.

        with acct.reserve("acme/fileorg/builder", model="gpt-4o", input_tokens=12_000,
                          max_output_tokens=8_000) as r:
            response = call_model(...)
            r.settle(input_tokens=11_870, output_tokens=6_120, finish_reason="stop")

    Leaving the block with an exception releases the reservation and records the failed call
    (status "rate_limited" when the exception looks like an HTTP 429, else "error"); leaving it
    without settling records a "released" call with no tokens.
    """

    def __init__(
        self,
        owner: _Owner,
        *,
        id: str,
        scope: str,
        model: str,
        input_tokens: int,
        max_output_tokens: int,
        usd: float | None,
        expires_at: float,
        attempt: int = 1,
        phase: str | None = None,
        agent: str | None = None,
        task_type: str | None = None,
        request_id: str | None = None,
        session: str | None = None,
        provider: str | None = None,
    ):
        self._owner = owner
        self.id = id
        self.scope = scope
        self.model = model
        self.input_tokens = input_tokens
        self.max_output_tokens = max_output_tokens
        self.usd = usd
        self.expires_at = expires_at
        self.attempt = attempt
        self.phase = phase
        self.agent = agent
        self.task_type = task_type
        self.request_id = request_id
        self.session = session
        self.provider = provider
        self.record: LedgerRecord | None = None
        self._started = time.monotonic()
        self._closing = threading.Lock()  # settle/release from two threads: exactly one wins

    @property
    def active(self) -> bool:
        return self.record is None

    @property
    def tokens(self) -> int:
        """Tokens held: the input plus max_output_tokens."""
        return self.input_tokens + self.max_output_tokens

    def settle(
        self,
        *,
        input_tokens: int | None = None,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
        finish_reason: str | None = None,
        provider: str | None = None,
        request_id: str | None = None,
        latency_s: float | None = None,
        status: str = "ok",
        error: str | None = None,
        http_status: int | None = None,
        ttft_s: float | None = None,
        usage_estimated: bool = False,
        max_tokens_requested: int | None = None,
        optimized_from: int | None = None,
        optimized_to: int | None = None,
        optimize_actions: str | None = None,
    ) -> LedgerRecord:
        """Replace the hold by the real usage and write the call's ledger record (one transaction).

        `input_tokens` defaults to the reserved input; `latency_s` to the time since `reserve`. A call
        that failed or was cancelled part-way is settled the same way with the tokens it really used
        (a partial stream) and its `status` ("error", "rate_limited", "cancelled"): those tokens are
        spent, the rest of the hold is released.
        """
        usage = CallUsage(
            input_tokens=self.input_tokens if input_tokens is None else input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
            reasoning_tokens=reasoning_tokens,
            finish_reason=finish_reason,
            provider=provider or self.provider,
            request_id=request_id or self.request_id,
            latency_s=self._elapsed() if latency_s is None else latency_s,
            status=status,
            error=error,
            http_status=http_status,
            ttft_s=ttft_s,
            usage_estimated=usage_estimated,
            max_tokens_requested=max_tokens_requested,
            optimized_from=optimized_from,
            optimized_to=optimized_to,
            optimize_actions=optimize_actions,
        )
        return self._close(usage)

    def release(self, error: str | None = None, *, status: str = "error") -> LedgerRecord:
        """Give the hold back without spending it (the call failed or was never made)."""
        usage = CallUsage(
            input_tokens=0, status=status, error=error, latency_s=self._elapsed(), provider=self.provider
        )
        return self._close(usage)

    def _close(self, usage: CallUsage) -> LedgerRecord:
        with self._closing:
            if self.record is not None:
                raise InputError(
                    f"reservation {self.id} is already {self.record.status}; settle or release once"
                )
            self.record = self._owner._finish(self, usage)
            return self.record

    def _elapsed(self) -> float:
        return round(time.monotonic() - self._started, 6)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.record is not None:
            return
        if exc is None:
            self.release("left the reserve() block without settle()", status="released")
            return
        status = (
            "rate_limited"
            if _looks_rate_limited(exc)
            else "cancelled"
            if isinstance(exc, asyncio.CancelledError | GeneratorExit)
            else "error"
        )
        try:
            self.release(f"{type(exc).__name__}: {exc}"[:2000], status=status)
        except TokenpilotError as problem:
            # Never mask the caller's exception; the hold expires after its TTL anyway.
            log.warning(
                "could not release reservation %s (%s); it will be reclaimed after its TTL",
                self.id,
                problem,
                extra={"event": "release_failed", "reservation": self.id},
            )


def _looks_rate_limited(exc: BaseException) -> bool:
    """An HTTP 429 from any client library (status_code / status attributes or the class name)."""
    for attribute in ("status_code", "status", "http_status"):
        value: Any = getattr(exc, attribute, None)
        if value == 429:
            return True
    response: Any = getattr(exc, "response", None)
    if getattr(response, "status_code", None) == 429:
        return True
    return "ratelimit" in type(exc).__name__.lower().replace("_", "")
