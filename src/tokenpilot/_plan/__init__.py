"""Call planning: max_tokens, prompt tier, output mode and model for each call; truncation
retries; routing and failover; cost comparison of routing policies."""

from tokenpilot._plan._cost import (
    CostComparison,
    PolicyCost,
    WorkloadRow,
    compare_costs,
    load_workload,
    parse_workload,
)
from tokenpilot._plan._history import AttemptRecorder, CallHistory, CallRecord
from tokenpilot._plan._output_mode import FileToWrite, OutputModeChoice, choose_output_mode
from tokenpilot._plan._plan import CallPlan, Reason, plan_call
from tokenpilot._plan._ratelimit import RateLimits, parse_rate_limits
from tokenpilot._plan._response import ResponseCheck, check_response
from tokenpilot._plan._retry import FailoverDecision, failover, next_attempt, record_attempt
from tokenpilot._plan._routing import RouteChoice, chain_for, route
from tokenpilot._plan._settings import PlanSettings, RoutingSettings, plan_settings, routing_settings
from tokenpilot._plan._task import detect_task_type
from tokenpilot._plan._tiers import AssembledPrompt, PromptConditions, PromptRegistry, PromptSection

__all__ = [
    "AssembledPrompt",
    "AttemptRecorder",
    "CallHistory",
    "CallPlan",
    "CallRecord",
    "CostComparison",
    "FailoverDecision",
    "FileToWrite",
    "OutputModeChoice",
    "PlanSettings",
    "PolicyCost",
    "PromptConditions",
    "PromptRegistry",
    "PromptSection",
    "RateLimits",
    "Reason",
    "ResponseCheck",
    "RouteChoice",
    "RoutingSettings",
    "WorkloadRow",
    "chain_for",
    "check_response",
    "choose_output_mode",
    "compare_costs",
    "detect_task_type",
    "failover",
    "load_workload",
    "next_attempt",
    "parse_rate_limits",
    "parse_workload",
    "plan_call",
    "plan_settings",
    "record_attempt",
    "route",
    "routing_settings",
]
