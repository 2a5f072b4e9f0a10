"""Enforce mode's advice when the model's window squeezes the answer: plan's words, the proxy's numbers.

The proxy caps max_tokens by the room the counted prompt leaves in the window. When that cap is
below what the call asked for (its own max_tokens, else the model's max output), the response says
how many input tokens must go for the full answer and, when the routing chain or the registry has
one, a model whose window fits, in the same one-line text as `CallPlan.advice`
(`x-tokenpilot-advice` and the `[TOKEN_BUDGET]` line).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("tokenpilot.serve")


def squeeze_advice(payload: Mapping[str, Any], model: str, capped: int, full_output: int, room: int) -> str:
    """The advice line for a call whose max_tokens the window capped at `capped` (of `full_output`).

    `room` is what the window leaves after the counted prompt; the alternative's input is counted
    with its own tokenizer, so this runs on a worker thread, beside the upstream call.
    """
    import tokenpilot as tp
    from tokenpilot._plan._compaction import advice_text, find_alternative
    from tokenpilot._plan._routing import chain_for
    from tokenpilot._plan._settings import plan_settings, routing_settings

    info = tp.get_model(model)
    needed = max(1, full_output - room)
    try:
        alternative = find_alternative(
            payload,
            info,
            full_output,
            plan_settings().safety_margin,
            chain_for(info.name, routing_settings()),
        )
    except tp.TokenpilotError as exc:  # a body count_messages cannot read (Responses input): no alternative
        log.debug("no alternative model for the advice: %s", exc)
        alternative = None
    return advice_text(info.name, capped, full_output, needed, alternative)
