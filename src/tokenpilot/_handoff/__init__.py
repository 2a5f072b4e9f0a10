"""Agent lifecycle: phase hand-offs, the rules that say when to reset, sub-agent context in a budget.

import tokenpilot as tp
result = tp.handoff(messages, budget=8_000, model="gpt-4o")
tp.should_reset(messages, phase_ended=True).reset
tp.fit_context({"task": "…", "files": […]}, 30_000, required=("task",)).context
"""

from tokenpilot._handoff.phase_handoff import HandoffResult, handoff
from tokenpilot._handoff.reset import LifecycleSettings, ResetDecision, lifecycle_settings, should_reset
from tokenpilot._handoff.subagent_context import FitResult, Reduction, agent_fields, fit_context

__all__ = [
    "FitResult",
    "HandoffResult",
    "LifecycleSettings",
    "Reduction",
    "ResetDecision",
    "agent_fields",
    "fit_context",
    "handoff",
    "lifecycle_settings",
    "should_reset",
]
