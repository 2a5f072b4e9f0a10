"""After a call: retry a truncated answer with more room, fail over on errors, record each attempt.

Truncated (`check_response`): max_tokens × `retry_factor` (1.5) up to the cap of the model
(its max output and the room in its window); at the cap, or when the window itself was full, the
next model of the chain whose cap is larger. Errors (`failover`): 429 waits what `retry-after` or
the rate-limit headers say when that is at most `max_wait_seconds`, else moves to the next model;
5xx and overload (529, `overloaded_error`) move to the next model at once; other 4xx give up.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tokenpilot._exceptions import BudgetError
from tokenpilot._models import get_model
from tokenpilot._plan._history import AttemptRecorder
from tokenpilot._plan._plan import CallPlan, Reason, fit_output
from tokenpilot._plan._ratelimit import Headers, RateLimits, parse_rate_limits
from tokenpilot._plan._response import ResponseCheck, check_response
from tokenpilot._plan._routing import over_budget
from tokenpilot._plan._settings import plan_settings, routing_settings

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
OVERLOADED_TYPES = frozenset({"overloaded_error", "api_error", "server_error"})
RATE_LIMIT_TYPES = frozenset({"rate_limit_error", "rate_limit_exceeded"})
QUOTA_TYPES = frozenset({"insufficient_quota"})
# Without any header saying how long to wait: 1 s, 2 s, 4 s, … at most 30 s.
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0


# The ledger scope of attempts recorded without one.
UNSCOPED = "unscoped"


def record_attempt(
    ledger: AttemptRecorder,
    plan: CallPlan,
    *,
    check: ResponseCheck | None = None,
    scope: str | None = None,
    status: str = "ok",
    error: str | None = None,
) -> None:
    """Record one attempt of `plan` (with its response check, or an error) in the ledger."""
    input_tokens = plan.input_tokens
    cache_read = cache_write = 0
    if check is not None and check.input_tokens is not None:
        # The ledger's input count is every prompt token, cached or not; the cache split rides along.
        cache_read, cache_write = check.cache_read_tokens, check.cache_write_tokens
        input_tokens = check.input_tokens + cache_read + cache_write
    # The ledger derives `truncated` from the finish reason.
    ledger.record_call(
        scope=scope or UNSCOPED,
        model=plan.model,
        input_tokens=input_tokens,
        output_tokens=check.output_tokens if check else 0,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        max_tokens=plan.max_tokens,
        finish_reason=check.finish_reason if check else None,
        attempt=plan.attempt,
        status=status,
        error=error,
        phase=plan.phase,
        task_type=plan.task_type,
    )


def _on_model(plan: CallPlan, model: str, wanted: int, why: str) -> CallPlan | None:
    """`plan` moved to `model` with `wanted` max_tokens (capped), or None if it cannot fit there."""
    settings = plan_settings()
    info = get_model(model)
    fit = fit_output(plan.body, info, wanted, settings)
    if fit.min_output_shortfall:
        return None
    rest = plan.chain[plan.chain.index(model) + 1 :] if model in plan.chain else ()
    reason = Reason(
        "retry", f"attempt {plan.attempt + 1}", f"{why}; max_tokens {fit.max_tokens:,} ({fit.reason})"
    )
    return dataclasses.replace(
        plan,
        model=info.name,
        provider=info.provider,
        input_tokens=fit.input_tokens,
        input_exact=fit.input_exact,
        context_window=info.context_window,
        max_tokens=fit.max_tokens,
        output_cap=fit.output_cap,
        headroom=fit.headroom,
        compaction_needed=fit.compaction_needed,
        wanted_max_tokens=fit.full_output,
        min_output_shortfall=0,
        alternative=None,
        attempt=plan.attempt + 1,
        chain=rest,
        reasons=(*plan.reasons, reason),
    )


def next_attempt(
    plan: CallPlan,
    response: Mapping[str, Any],
    *,
    ledger: AttemptRecorder | None = None,
    scope: str | None = None,
) -> CallPlan | None:
    """The plan of the next attempt when `response` was truncated, or None when it was complete.

    Records this attempt in `ledger` when given. Raises `BudgetError` when the answer was cut
    off and neither a larger max_tokens nor another model of the chain can give it more room.

    >>> import tokenpilot as tp
    >>> body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Explain the module"}]}
    >>> plan = tp.plan_call(body, "gpt-4o", task_type="explanation", complexity="medium")
    >>> cut = {"choices": [{"finish_reason": "length", "message": {"role": "assistant", "content": "…"}}]}
    >>> retry = tp.next_attempt(plan, cut)
    >>> retry.attempt, retry.max_tokens > plan.max_tokens
    (2, True)
    >>> done = {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}]}
    >>> tp.next_attempt(plan, done) is None
    True
    """
    check = check_response(response)
    if ledger is not None:
        record_attempt(ledger, plan, check=check, scope=scope, status="ok")
    if not check.truncated:
        return None
    settings = plan_settings()
    if plan.attempt >= settings.max_attempts:
        raise BudgetError(
            f"answer still truncated after {plan.attempt} attempts (max_attempts = {settings.max_attempts}); "
            "split the task or raise [plan] max_attempts"
        )
    wanted = max(plan.max_tokens + 1, math.ceil(plan.max_tokens * settings.retry_factor))
    if check.reason == "max_tokens" and plan.max_tokens < plan.output_cap:
        grown = min(wanted, plan.output_cap)
        why = (
            f"truncated ({check.finish_reason}) at {plan.max_tokens:,}: "
            f"× {settings.retry_factor:g} on {plan.model}"
        )
        retry = _on_model(plan, plan.model, grown, why)
        if retry is not None:
            return dataclasses.replace(retry, chain=plan.chain)
    what = (
        "the window was full"
        if check.reason == "context_window"
        else f"max_tokens at its cap {plan.output_cap:,}"
    )
    for candidate in plan.chain:
        info = get_model(candidate)
        room = info.context_window - plan.input_tokens
        cap = min(room, info.max_output_tokens or room)
        if cap <= plan.max_tokens:
            log.info("skipping a chain model without more room", extra={"model": candidate, "cap": cap})
            continue
        why = f"truncated ({check.finish_reason}), {what} on {plan.model}: next model in the chain"
        retry = _on_model(plan, candidate, wanted, why)
        if retry is not None and retry.max_tokens > plan.max_tokens:
            return retry
    raise BudgetError(
        f"answer truncated ({check.finish_reason}) with max_tokens {plan.max_tokens:,} on {plan.model} "
        f"and no model left in its chain with more room; compact the input or split the task"
    )


@dataclass(frozen=True, slots=True)
class FailoverDecision:
    """What to do after a failed call: `retry` (same model, after `wait_seconds`), `switch`
    (to `plan.model`, now) or `give_up`."""

    action: str
    wait_seconds: float
    plan: CallPlan | None
    reason: str
    rate_limits: RateLimits


def _error_kinds(error: Mapping[str, Any] | None) -> set[str]:
    """The `type` and `code` of an error body (`{"error": {...}}` or `{"type": "error", "error": …}`)."""
    if not error:
        return set()
    inner = error.get("error") if isinstance(error.get("error"), Mapping) else error
    assert isinstance(inner, Mapping)
    return {str(inner[k]) for k in ("type", "code") if inner.get(k)}


def failover(
    plan: CallPlan,
    *,
    status: int,
    headers: Headers | None = None,
    error: Mapping[str, Any] | None = None,
    budget_used: Mapping[str, float] | None = None,
    ledger: AttemptRecorder | None = None,
    scope: str | None = None,
    now: datetime | None = None,
) -> FailoverDecision:
    """Decide what follows a failed call (HTTP `status`, response `headers`, error body `error`).

    >>> import tokenpilot as tp
    >>> body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Explain the module"}]}
    >>> plan = tp.plan_call(body, "gpt-4o", task_type="explanation", complexity="medium")
    >>> decision = tp.failover(plan, status=429, headers={"retry-after": "2"})
    >>> decision.action, decision.wait_seconds
    ('retry', 2.0)
    """
    settings = plan_settings()
    routing = routing_settings()
    limits = parse_rate_limits(headers or {}, now=now)
    kinds = _error_kinds(error)
    kind = "/".join(sorted(kinds)) or None
    if ledger is not None:
        record_attempt(
            ledger, plan, scope=scope, status="error", error=f"HTTP {status}" + (f" {kind}" if kind else "")
        )
    retryable = status in RETRYABLE_STATUSES or bool(
        kinds & (OVERLOADED_TYPES | RATE_LIMIT_TYPES | QUOTA_TYPES)
    )
    if not retryable:
        return FailoverDecision("give_up", 0.0, None, f"HTTP {status} is not retryable", limits)
    if plan.attempt >= settings.max_attempts:
        return FailoverDecision(
            "give_up", 0.0, None, f"HTTP {status} after {plan.attempt} attempts (max_attempts)", limits
        )
    backoff = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (plan.attempt - 1))
    wait = limits.wait_seconds
    # An exhausted quota is not a rate limit: waiting does not help, another model (provider) may.
    no_quota = bool(kinds & QUOTA_TYPES)
    rate_limited = (status == 429 or bool(kinds & RATE_LIMIT_TYPES)) and not no_quota
    switch_to = None
    for candidate in plan.chain:
        if not over_budget(candidate, routing, budget_used):
            moved = _on_model(plan, candidate, plan.max_tokens, f"HTTP {status} on {plan.model}: failover")
            if moved is not None:
                switch_to = moved
                break
    if rate_limited and wait is not None and wait <= routing.max_wait_seconds:
        retry = dataclasses.replace(
            plan,
            attempt=plan.attempt + 1,
            reasons=(
                *plan.reasons,
                Reason("retry", f"attempt {plan.attempt + 1}", f"HTTP {status}: wait {wait:g} s"),
            ),
        )
        return FailoverDecision(
            "retry", wait, retry, f"rate limited; the headers say wait {wait:g} s", limits
        )
    if switch_to is not None:
        why = (
            f"rate limited for {wait:g} s (> max_wait_seconds {routing.max_wait_seconds:g})"
            if rate_limited and wait is not None
            else f"HTTP {status}" + (f" ({kind})" if kind else "")
        )
        return FailoverDecision("switch", 0.0, switch_to, f"{why}: switch to {switch_to.model}", limits)
    if no_quota:
        return FailoverDecision(
            "give_up", 0.0, None, "quota exhausted and no model left in the chain", limits
        )
    delay = wait if wait is not None else backoff
    retry = dataclasses.replace(
        plan,
        attempt=plan.attempt + 1,
        reasons=(
            *plan.reasons,
            Reason("retry", f"attempt {plan.attempt + 1}", f"HTTP {status}: wait {delay:g} s"),
        ),
    )
    source = "the headers" if wait is not None else "backoff"
    return FailoverDecision(
        "retry",
        delay,
        retry,
        f"HTTP {status}, no model left in the chain: wait {delay:g} s ({source})",
        limits,
    )
