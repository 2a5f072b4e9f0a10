"""max_tokens for a call: from the table, or learned from similar past calls, then capped.

Learned: with at least `learn_min_samples` similar past calls, the p-th percentile (nearest rank,
default p90) of their output tokens × `learn_margin` (default 1.2), rounded up. "Similar" is tried
from narrow to wide: same phase, task type and model; then same phase and task type; then same task
type and model. A truncated past call only says its output needed *more* than it got, so when more
than 10% of the sample was truncated the learned value is not trusted below the table's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tokenpilot._plan._history import CallHistory, CallRecord
from tokenpilot._plan._settings import PlanSettings

TRUNCATED_REASONS = frozenset({"length", "max_tokens", "model_context_window_exceeded", "max_output_tokens"})
# Samples read per query: enough for a stable p90, few enough to follow recent behaviour.
LEARN_WINDOW = 500
MAX_TRUNCATED_SHARE = 0.10


@dataclass(frozen=True, slots=True)
class MaxTokensChoice:
    """The max_tokens wanted before caps, where it came from and why."""

    value: int
    source: str  # "table", "learned" or "request"
    reason: str
    samples: int = 0


def percentile(values: Sequence[int], p: float) -> int:
    """Nearest-rank percentile: the smallest value with at least p% of the values at or below it.

    >>> percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90)
    9
    """
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def table_max_tokens(settings: PlanSettings, task_type: str, complexity: str) -> MaxTokensChoice:
    """The configured (or default) max_tokens of a task type and complexity."""
    value = settings.max_tokens[task_type][complexity]
    return MaxTokensChoice(value, "table", f"table: {task_type}/{complexity} -> {value:,}")


def _usable(records: Sequence[CallRecord]) -> list[CallRecord]:
    return [r for r in records if isinstance(r.output_tokens, int) and r.output_tokens >= 0]


def learned_max_tokens(
    history: CallHistory,
    settings: PlanSettings,
    *,
    task_type: str,
    model: str,
    phase: str | None,
    table: MaxTokensChoice,
) -> MaxTokensChoice | None:
    """max_tokens learned from similar past calls, or None when there are too few of them."""
    queries: list[tuple[str, dict[str, str | None]]] = []
    if phase is not None:
        queries.append(
            ("phase, task type and model", {"phase": phase, "task_type": task_type, "model": model})
        )
        queries.append(("phase and task type", {"phase": phase, "task_type": task_type, "model": None}))
    queries.append(("task type and model", {"phase": None, "task_type": task_type, "model": model}))
    for label, query in queries:
        records = _usable(history.records(**query, limit=LEARN_WINDOW))
        if len(records) < settings.learn_min_samples:
            continue
        outputs = [r.output_tokens for r in records if r.output_tokens is not None]
        p = percentile(outputs, settings.learn_percentile)
        value = max(1, math.ceil(p * settings.learn_margin))
        truncated = sum(1 for r in records if (r.finish_reason or "") in TRUNCATED_REASONS)
        reason = (
            f"learned: p{settings.learn_percentile:g} of {len(records)} past calls with the same {label} "
            f"= {p:,} output tokens × {settings.learn_margin:g} -> {value:,}"
        )
        if truncated / len(records) > MAX_TRUNCATED_SHARE and value < table.value:
            value = table.value
            reason += (
                f"; {truncated} of them were truncated (their real size is unknown), "
                f"so not below the table's {table.value:,}"
            )
        return MaxTokensChoice(value, "learned", reason, samples=len(records))
    return None
