"""Counting chat requests: OpenAI's documented per-message rule, tools, Anthropic bodies."""

from __future__ import annotations

import pytest

import tokenpilot as tp

# The example of OpenAI's cookbook "How to count tokens with tiktoken"; the API reported 129 prompt
# tokens for gpt-3.5-turbo / gpt-4 (cl100k_base) and 124 for gpt-4o / gpt-4o-mini (o200k_base).
COOKBOOK = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate jargon "
        "into plain English.",
    },
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities for "
        "increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    },
]


@pytest.mark.parametrize(("model", "expected"), [("gpt-4", 129), ("gpt-3.5-turbo", 129), ("gpt-4o", 124)])
def test_cookbook_example_matches_api_reported_counts(model: str, expected: int) -> None:
    assert tp.count_messages(COOKBOOK, model=model) == expected


def test_request_body_uses_its_model_and_tools() -> None:
    body = {"model": "gpt-4", "messages": COOKBOOK}
    assert tp.count_messages(body) == 129
    tools = [{"type": "function", "function": {"name": "run", "parameters": {"type": "object"}}}]
    assert tp.count_messages({**body, "tools": tools}) > 129


def test_tool_call_arguments_are_counted() -> None:
    short = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": '{"cmd": "ls"}'}}
        ],
    }
    long = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "bash", "arguments": '{"cmd": "' + "ls -la " * 50 + '"}'},
            }
        ],
    }
    assert tp.count_messages([long]) - tp.count_messages([short]) >= 100


def test_anthropic_body_counts_system_tool_use_and_results() -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "system": "You are a coding agent.",
        "messages": [
            {"role": "user", "content": "Fix the bug in utils.py"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Reading the file."},
                    {"type": "tool_use", "id": "t1", "name": "read", "input": {"path": "utils.py"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "def f():\n    return 1\n" * 40},
                ],
            },
        ],
    }
    total = tp.count_messages(body)
    without_result = dict(body, messages=body["messages"][:2])
    assert total - tp.count_messages(without_result) > 200
    assert tp.count_messages(dict(body, system=None)) < total


def test_images_have_a_cost() -> None:
    text_only = [{"role": "user", "content": [{"type": "text", "text": "what is this?"}]}]
    with_image = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
            ],
        }
    ]
    assert tp.count_messages(with_image) - tp.count_messages(text_only) == 85


@pytest.mark.parametrize("bad", ["just text", [1, 2], {"no": "messages"}, [{"role": "user", "content": 5}]])
def test_malformed_messages_are_input_errors(bad: object) -> None:
    with pytest.raises(tp.InputError):
        tp.count_messages(bad)  # type: ignore[arg-type]
