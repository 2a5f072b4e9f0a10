"""Failover (`[serve] failover = true`): where a call goes after a retryable upstream error.

Only answers that come before any byte reached the client can fail over (an error status, not a
broken stream). The next stop is the upstream's `fallback` (same model, another endpoint) when it
names one not yet tried, else the model `tp.failover` switches to in the model's routing chain
(`[routing.chains]`), when that model speaks the same API. Every attempt is its own ledger record.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson

from tokenpilot._serve.requests import CallRequest

log = logging.getLogger("tokenpilot.serve")

RETRYABLE = frozenset({408, 409, 429, 500, 502, 503, 504, 529})  # tp.failover's retryable statuses
MAX_ATTEMPTS = 3  # the first call and at most two failovers


def next_model(call: CallRequest, status: int, headers: Mapping[str, str], content: bytes) -> str | None:
    """The model `tp.failover` switches to after this error, when it speaks the call's API; else None.

    Planning parses the body, so this runs on a worker thread (and only on the error path).
    """
    import tokenpilot as tp

    try:
        error: Any = orjson.loads(content)
    except orjson.JSONDecodeError:
        error = None
    try:
        plan = tp.plan_call(dict(call.payload), call.model, task_type="unknown", complexity="medium")
        decision = tp.failover(
            plan, status=status, headers=dict(headers), error=error if isinstance(error, dict) else None
        )
    except tp.TokenpilotError as exc:  # a body plan cannot read (Responses input): no model failover
        log.info("no model failover for %s: %s", call.model, exc)
        return None
    if decision.action != "switch" or decision.plan is None or decision.plan.model == call.model:
        return None
    model = decision.plan.model
    if tp.get_model(model).provider != call.family:
        log.info("failover: %s is another provider's model; the error goes back as it came", model)
        return None
    return model
