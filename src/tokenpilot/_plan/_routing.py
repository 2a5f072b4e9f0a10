"""Routing: task type and complexity -> tier -> model, and each model's failover chain.

A model's chain is `[routing.chains]."MODEL"` when configured; otherwise the models of the tiers
listed after its own tier in a configured `[routing.tiers]` (cheap -> standard -> strong); with
neither, it is empty (tokenpilot never moves a call to a model nobody configured). A model whose daily
budget is spent past `budget_warning` (a share, given by the caller as `budget_used`) is skipped
in favour of the next one in its chain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tokenpilot._exceptions import InputError
from tokenpilot._plan._settings import RoutingSettings
from tokenpilot._plan._task import COMPLEXITIES, TASK_TYPES


@dataclass(frozen=True, slots=True)
class RouteChoice:
    """The model routing picked, its tier, and the models skipped on the way."""

    model: str
    tier: str
    reason: str
    skipped: tuple[str, ...] = ()


def chain_for(model: str, settings: RoutingSettings) -> tuple[str, ...]:
    """The models to fall back to after `model`, in order (never `model` itself)."""
    if model in settings.chains:
        configured = settings.chains[model]
        return tuple(dict.fromkeys(m for m in configured if m != model))
    if not settings.configured:  # the built-in tiers price `cost compare`, never move a live call
        return ()
    models = list(settings.tiers.values())
    if model not in models:
        return ()
    after = models[models.index(model) + 1 :]
    return tuple(dict.fromkeys(m for m in after if m != model))


def over_budget(model: str, settings: RoutingSettings, budget_used: Mapping[str, float] | None) -> bool:
    """True when `model`'s daily budget is spent at or past the warning threshold."""
    return bool(budget_used) and float((budget_used or {}).get(model, 0.0)) >= settings.budget_warning


def next_model(
    model: str,
    settings: RoutingSettings,
    *,
    exclude: Iterable[str] = (),
    budget_used: Mapping[str, float] | None = None,
) -> str | None:
    """The first model of `model`'s chain not excluded and not past its budget warning, or None."""
    excluded = {model, *exclude}
    for candidate in chain_for(model, settings):
        if candidate not in excluded and not over_budget(candidate, settings, budget_used):
            return candidate
    return None


def route(
    task_type: str,
    complexity: str,
    settings: RoutingSettings,
    *,
    budget_used: Mapping[str, float] | None = None,
) -> RouteChoice:
    """The model for a task type and complexity by the routing rules.

    >>> from tokenpilot._plan._settings import RoutingSettings
    >>> route("tool_call", "low", RoutingSettings()).model
    'gpt-4o-mini'
    """
    if task_type not in TASK_TYPES:
        raise InputError(f"unknown task type {task_type!r} (known: {', '.join(TASK_TYPES)})")
    if complexity not in COMPLEXITIES:
        raise InputError(f"unknown complexity {complexity!r} (known: {', '.join(COMPLEXITIES)})")
    tier = settings.rules[task_type][complexity]
    model = settings.tiers[tier]
    reason = f"routed: {task_type}/{complexity} -> tier {tier} -> {model}"
    skipped: list[str] = []
    while over_budget(model, settings, budget_used):
        skipped.append(model)
        following = next_model(model, settings, exclude=skipped, budget_used=budget_used)
        if following is None:
            reason += f"; every model in the chain is past its budget warning, keeping {skipped[0]}"
            return RouteChoice(skipped[0], tier, reason, tuple(skipped))
        model = following
    if skipped:
        reason += (
            f"; skipped {', '.join(skipped)} (daily budget past {settings.budget_warning:.0%}) -> {model}"
        )
    return RouteChoice(model, tier, reason, tuple(skipped))
