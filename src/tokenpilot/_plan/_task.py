"""Task type and complexity of a call, when the caller does not say, by documented rules.

Task type, first rule that applies:

1. `tool_choice` forces a tool (OpenAI `"required"` or a named function, Anthropic `any` or
   `tool`) -> `tool_call`.
2. Tools are offered and the last message is a tool result (the agent loop goes on) -> `tool_call`.
3. The last user message's intent, by keyword: each task type scores one point per keyword of
   its list found (whole words, case-insensitive) and two more when its keyword is the first word
   (an imperative: "Review this", "Explain why"; not for the generic verbs write, create, make,
   generate, whose object decides: "Write a plan"); the best score wins, ties go to the earlier
   type in the order review, planning, code_generation, explanation.
4. Tools are offered (and not refused with `tool_choice: "none"`) -> `tool_call`.
5. Otherwise -> `unknown`.

Complexity: `high` when a high keyword is found (refactor, migrate, architecture, …); `low` when
a low keyword is found (typo, rename, one-line, …) and the last user message is under 60 words;
else `medium`. The prompt's size is not a signal: in an agent loop it measures the history, not
the task.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tokenpilot._plan._request import RequestView

TASK_TYPES = ("tool_call", "code_generation", "explanation", "planning", "review", "unknown")
COMPLEXITIES = ("low", "medium", "high")

# Order is the tie-break order of rule 3.
INTENT_KEYWORDS: dict[str, tuple[str, ...]] = {
    "review": (
        "review", "audit", "critique", "security", "vulnerability", "vulnerabilities",
        "inspect", "proofread", "lgtm",
    ),
    "planning": (
        "plan", "design", "architect", "architecture", "roadmap", "strategy", "outline",
        "steps", "approach", "break down", "milestones",
    ),
    "code_generation": (
        "implement", "write", "fix", "refactor", "add", "create", "code", "function", "class",
        "patch", "bug", "generate", "edit", "update", "rename", "migrate", "test", "tests",
    ),
    "explanation": (
        "explain", "why", "what", "how", "describe", "summarize", "summarise", "meaning",
        "difference", "understand", "tell me",
    ),
}  # fmt: skip
HIGH_KEYWORDS = (
    "refactor", "migrate", "migration", "architecture", "redesign", "entire", "whole",
    "across", "complex", "concurrency", "security", "rewrite", "end-to-end",
)  # fmt: skip
LOW_KEYWORDS = ("typo", "rename", "one-line", "one line", "small", "simple", "trivial", "quick", "tiny")
GENERIC_VERBS = frozenset({"write", "create", "make", "generate"})
LOW_MAX_WORDS = 60

_WORD = re.compile(r"[a-z][a-z0-9_'-]*")


@dataclass(frozen=True, slots=True)
class Detection:
    """A detected value and the rule that gave it."""

    value: str
    reason: str


def _has(text: str, keyword: str) -> bool:
    return re.search(rf"(?<![a-z0-9_]){re.escape(keyword)}(?![a-z0-9_])", text) is not None


def intent_of(text: str) -> Detection | None:
    """The task type a user message asks for, by keyword score (rule 3), or None.

    >>> intent_of("Explain why this test fails").value
    'explanation'
    """
    lowered = text.lower()
    words = _WORD.findall(lowered)
    first = words[0] if words else ""
    best: tuple[int, str, list[str]] | None = None
    for task_type, keywords in INTENT_KEYWORDS.items():
        found = [k for k in keywords if _has(lowered, k)]
        if not found:
            continue
        score = len(found) + (2 if first in found and first not in GENERIC_VERBS else 0)
        if best is None or score > best[0]:
            best = (score, task_type, found)
    if best is None:
        return None
    score, task_type, found = best
    return Detection(task_type, f"last user message asks for {task_type} ({', '.join(found)}; score {score})")


def detect_task_type(view: RequestView) -> Detection:
    """The task type of a request by rules 1-5 of this module.

    >>> from tokenpilot._plan._request import view_request
    >>> detect_task_type(view_request("Review this diff for security problems")).value
    'review'
    """
    if view.tool_choice == "required" or view.tool_choice.startswith("tool:"):
        return Detection("tool_call", f"tool_choice forces a tool ({view.tool_choice})")
    tools_usable = bool(view.tool_names) and view.tool_choice != "none"
    if tools_usable and view.last_is_tool_result:
        return Detection("tool_call", "tools offered and the last message is a tool result")
    intent = intent_of(view.last_user_text)
    if intent is not None:
        return intent
    if tools_usable:
        return Detection("tool_call", "tools offered and no other intent found")
    return Detection("unknown", "no rule matched")


def detect_complexity(view: RequestView) -> Detection:
    """`low`, `medium` or `high` by the rules of this module.

    >>> from tokenpilot._plan._request import view_request
    >>> detect_complexity(view_request("Fix the typo in README")).value
    'low'
    """
    lowered = view.last_user_text.lower()
    high = [k for k in HIGH_KEYWORDS if _has(lowered, k)]
    if high:
        return Detection("high", f"last user message mentions {', '.join(high)}")
    low = [k for k in LOW_KEYWORDS if _has(lowered, k)]
    if low and len(_WORD.findall(lowered)) < LOW_MAX_WORDS:
        return Detection("low", f"short request mentioning {', '.join(low)}")
    return Detection("medium", "default (no low or high signal)")
