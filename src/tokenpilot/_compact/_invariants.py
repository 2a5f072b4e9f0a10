"""The invariants every compaction output satisfies, as checks anyone can run (`tp.validate`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tokenpilot._exceptions import InputError
from tokenpilot._messages import Message, parse


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule: the message position, a short code and a sentence."""

    index: int
    code: str
    message: str


def check(
    messages: Sequence[Message], provider: str, *, allow_dangling_end: bool = True
) -> tuple[Problem, ...]:
    """Problems of a conversation for `provider` ("openai" or "anthropic"); empty when valid.

    - every tool result answers a call of the closest preceding assistant message;
    - every tool call is answered before the next assistant message (a trailing unanswered call,
      the agent's request in flight, is allowed when `allow_dangling_end`);
    - Anthropic: only user/assistant roles; the first message is a user message.
    """
    problems: list[Problem] = []
    pending: dict[str, int] = {}
    open_calls: set[str] = set()
    last_assistant = -1
    for i, message in enumerate(messages):
        if provider == "anthropic" and message.role not in ("user", "assistant"):
            problems.append(Problem(i, "role", f"role {message.role!r} is not valid in Anthropic messages"))
        if message.role == "assistant":
            for call_id, where in pending.items():
                problems.append(Problem(where, "unanswered_call", f"tool call {call_id!r} has no result"))
            pending = {call.id: i for call in message.tool_calls}
            open_calls = set(pending)
            last_assistant = i
            continue
        if pending and (provider == "openai" and message.role != "tool"):
            for call_id, where in pending.items():
                problems.append(Problem(where, "unanswered_call", f"tool call {call_id!r} has no result"))
            pending = {}
        for result in message.tool_results:
            if result.call_id in pending:
                del pending[result.call_id]
            elif result.call_id in open_calls:
                problems.append(
                    Problem(i, "duplicate_result", f"tool call {result.call_id!r} answered twice")
                )
            else:
                problems.append(
                    Problem(i, "orphan_result", f"tool result {result.call_id!r} has no tool call")
                )
        if provider == "anthropic" and message.tool_results and i != last_assistant + 1:
            problems.append(
                Problem(
                    i, "result_position", "tool results must follow the assistant message that called them"
                )
            )
        if provider == "anthropic" and pending:
            for call_id, where in pending.items():
                problems.append(Problem(where, "unanswered_call", f"tool call {call_id!r} has no result"))
            pending = {}
    if pending and not allow_dangling_end:
        for call_id, where in pending.items():
            problems.append(Problem(where, "unanswered_call", f"tool call {call_id!r} has no result"))
    if provider == "anthropic" and messages and messages[0].role != "user":
        problems.append(Problem(0, "first_role", "the first Anthropic message must be a user message"))
    return tuple(problems)


def validate(messages: Any, provider: str = "auto") -> tuple[Problem, ...]:
    """Check a messages array or request body; returns the problems found (empty: valid).

    >>> validate([{"role": "tool", "tool_call_id": "x", "content": "hi"}], "openai")[0].code
    'orphan_result'
    """
    if provider not in ("auto", "openai", "anthropic"):
        raise InputError(f"unknown provider {provider!r} (auto, openai, anthropic)")
    conversation = parse(messages, provider)
    return check(conversation.messages, conversation.provider)
