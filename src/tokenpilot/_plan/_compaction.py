"""When the input squeezes the answer: how many input tokens must go, or which model's window fits.

A plan whose max_tokens is capped by the room left in the window (below what the table, the learned
p90 or the files to write ask for) names the input tokens to remove for the full answer and, when
one exists, a model whose window holds the input and the full answer: first in the model's routing
chain, then in the registry (same provider, known prices, not a fine-tune or dated snapshot, not
cheaper per output token than the planned model: a bigger window, not a weaker model).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tokenpilot._models import ModelInfo, get_model, list_models
from tokenpilot._tokens import count_messages, tokenizer_for

_SNAPSHOT = re.compile(r"-\d{4}(-\d{2}-\d{2})?$|-\d{4}$|^ft:|preview|audio|search|realtime|deep-research")


@dataclass(frozen=True, slots=True)
class Alternative:
    """A model whose window holds the input and the full answer, and what the call costs there."""

    model: str
    context_window: int
    input_tokens: int
    cost_usd: float | None
    source: str  # "chain" or "registry"


def room_for_output(info: ModelInfo, input_tokens: int, safety_margin: int) -> int:
    """Tokens the window leaves for the answer (the estimate margin applied to estimated counts)."""
    return tokenizer_for(info.name).safe_budget(info.context_window) - input_tokens - safety_margin


def find_alternative(
    body: Mapping[str, Any],
    current: ModelInfo,
    full_output: int,
    safety_margin: int,
    chain: tuple[str, ...],
) -> Alternative | None:
    """The first chain model, else the registry's cheapest fitting model, for input + `full_output`."""
    counts: dict[str, int] = {}

    def fits(info: ModelInfo) -> int | None:
        if info.max_output_tokens is not None and info.max_output_tokens < full_output:
            return None
        if info.context_window < full_output:
            return None
        key = info.tokenizer
        if key not in counts:
            counts[key] = count_messages(body, model=info.name)
        return counts[key] if room_for_output(info, counts[key], safety_margin) >= full_output else None

    for name in chain:
        info = get_model(name)
        tokens = fits(info)
        if tokens is not None:
            return Alternative(
                info.name, info.context_window, tokens, info.cost(tokens, full_output), "chain"
            )
    floor = current.output_per_mtok or 0.0
    candidates: list[tuple[float, str, ModelInfo, int]] = []
    for info in list_models(current.provider):
        if info.name == current.name or not info.price_known or not info.exact or _SNAPSHOT.search(info.name):
            continue
        if (info.output_per_mtok or 0.0) < floor or info.context_window <= current.context_window:
            continue
        tokens = fits(info)
        cost = info.cost(tokens, full_output) if tokens is not None else None
        if tokens is not None and cost is not None:
            candidates.append((cost, info.name, info, tokens))
    if not candidates:
        return None
    cost, _, info, tokens = min(candidates, key=lambda c: (c[0], c[1]))
    return Alternative(info.name, info.context_window, tokens, cost, "registry")


def advice_text(
    model: str, max_tokens: int, full_output: int, compaction_needed: int, alternative: Alternative | None
) -> str:
    """One ASCII line: what to remove (or where to go) for the full answer; fit for an HTTP header."""
    text = (
        f"compact {compaction_needed} input tokens for the full {full_output}-token answer "
        f"({model} max_tokens capped at {max_tokens})"
    )
    if alternative is not None:
        price = f", ${alternative.cost_usd:.4f} per call" if alternative.cost_usd is not None else ""
        text += f", or use {alternative.model} ({alternative.context_window} window{price})"
    return text
