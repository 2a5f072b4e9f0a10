"""The message model: lossless round trips, rebuilding from blocks, format detection."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from conversations import anthropic_body, openai_conversation
from tokenpilot import InputError
from tokenpilot._messages import (
    Conversation,
    ToolCall,
    ToolResult,
    detect_format,
    parse,
    render,
)

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _strip_raw(conversation: Conversation) -> Conversation:
    return conversation.with_messages(tuple(replace(m, raw=None) for m in conversation.messages))


@FAST
@given(openai_conversation())
def test_openai_round_trip_is_equal_json(messages: list[dict[str, Any]]) -> None:
    original = copy.deepcopy(messages)
    assert render(parse(messages)) == original


@FAST
@given(openai_conversation())
def test_openai_rebuilt_from_blocks_is_equal_json(messages: list[dict[str, Any]]) -> None:
    assert render(_strip_raw(parse(messages, "openai"))) == messages


@FAST
@given(anthropic_body())
def test_anthropic_body_round_trip_is_equal_json(body: dict[str, Any]) -> None:
    original = copy.deepcopy(body)
    assert render(parse(body)) == original


@FAST
@given(anthropic_body())
def test_anthropic_rebuilt_from_blocks_is_equal_json(body: dict[str, Any]) -> None:
    assert render(_strip_raw(parse(body, "anthropic"))) == body


@FAST
@given(anthropic_body())
def test_anthropic_bodies_are_detected(body: dict[str, Any]) -> None:
    assert detect_format(body) == "anthropic"


def test_openai_tool_messages_are_detected() -> None:
    messages = [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "a", "content": "x"}]
    assert detect_format(messages) == "openai"


def test_anthropic_blocks_without_body_are_detected() -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "x", "input": {}}]},
    ]
    assert detect_format(messages) == "anthropic"


def test_tool_calls_and_results_become_blocks() -> None:
    conversation = parse(
        [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "ls", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c", "content": "a.py"},
        ]
    )
    assert conversation.messages[1].tool_calls == (
        ToolCall("c", "ls", "{}", conversation.messages[1].tool_calls[0].raw),
    )
    result = conversation.messages[2].tool_results[0]
    assert isinstance(result, ToolResult) and result.call_id == "c" and result.text == "a.py"


@pytest.mark.parametrize(
    "bad",
    [
        "not a list",
        [{"role": "wizard", "content": "x"}],
        [{"role": "tool", "content": "no id"}],
        {"no": "messages"},
        [42],
    ],
)
def test_unusable_input_is_an_input_error(bad: Any) -> None:
    with pytest.raises(InputError):
        parse(bad)


def test_unknown_format_name_is_an_input_error() -> None:
    with pytest.raises(InputError):
        parse([], "gemini")
