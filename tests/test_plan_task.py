"""Task type and complexity detection: the documented rules, on real request bodies."""

from __future__ import annotations

import pytest

from plan_support import fixture
from tokenpilot._plan._request import view_request
from tokenpilot._plan._task import detect_complexity, detect_task_type, intent_of


def task_of(request: object) -> str:
    return detect_task_type(view_request(request)).value  # type: ignore[arg-type]


def test_anthropic_tool_choice_any_is_a_tool_call() -> None:
    assert task_of(fixture("anthropic_request_tool_choice_any")) == "tool_call"


def test_openai_named_function_choice_is_a_tool_call() -> None:
    body = fixture("openai_request_tools")
    body["tool_choice"] = {"type": "function", "function": {"name": "get_current_weather"}}
    assert task_of(body) == "tool_call"


def test_openai_required_tool_choice_is_a_tool_call() -> None:
    body = fixture("openai_request_plain")
    body["tools"] = fixture("openai_request_tools")["tools"]
    body["tool_choice"] = "required"
    assert task_of(body) == "tool_call"


def test_tool_result_last_with_tools_offered_continues_the_agent_loop() -> None:
    # The last user words ask for an explanation, but the next output follows a tool result.
    assert task_of(fixture("openai_request_tool_result")) == "tool_call"
    assert task_of(fixture("anthropic_request_tool_result")) == "tool_call"


def test_tool_choice_none_disables_the_tool_rules() -> None:
    body = fixture("openai_request_tool_result")
    body["tool_choice"] = "none"
    assert task_of(body) == "explanation"


def test_intent_of_last_user_message_decides_without_forced_tools() -> None:
    assert task_of(fixture("openai_request_plain")) == "explanation"
    assert task_of(fixture("anthropic_request_review")) == "review"


def test_tools_offered_without_intent_is_a_tool_call() -> None:
    # "What's the weather" has an explanation keyword ("what"); a request with no keyword at all:
    body = fixture("openai_request_tools")
    body["messages"][-1]["content"] = "Boston, today."
    assert task_of(body) == "tool_call"


def test_nothing_matches_is_unknown() -> None:
    assert task_of("Boston, today.") == "unknown"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Implement a function that parses ISO dates", "code_generation"),
        ("Write a plan for migrating the database", "planning"),
        ("Plan the steps to split the service", "planning"),
        ("Explain how the scheduler works", "explanation"),
        ("Review the error handling of this module", "review"),
        ("Fix the off-by-one bug in pagination", "code_generation"),
    ],
)
def test_intent_keywords(text: str, expected: str) -> None:
    detection = intent_of(text)
    assert detection is not None and detection.value == expected


def test_leading_imperative_outweighs_a_single_other_keyword() -> None:
    # "Explain" leads (+2); "code" alone gives code_generation 1 point.
    detection = intent_of("Explain this code")
    assert detection is not None and detection.value == "explanation"


def test_keywords_match_whole_words_only() -> None:
    # "fixture" contains "fix", "addition" contains "add": neither is a keyword hit.
    assert intent_of("fixture addition") is None


def test_complexity_low_for_a_short_typo_fix() -> None:
    assert detect_complexity(view_request("Fix the typo in the README")).value == "low"


def test_complexity_low_needs_a_short_request() -> None:
    long_request = "Fix the typo in the README. " + "It also needs more context about the project. " * 10
    assert detect_complexity(view_request(long_request)).value == "medium"


def test_complexity_high_for_refactors_and_migrations() -> None:
    assert detect_complexity(view_request("Refactor the storage layer")).value == "high"
    assert detect_complexity(view_request("Migrate the ORM to SQLAlchemy 2")).value == "high"


def test_complexity_defaults_to_medium() -> None:
    assert detect_complexity(view_request("Add a --verbose flag to the CLI")).value == "medium"


def test_view_reads_anthropic_system_blocks_and_openai_developer_messages() -> None:
    assert view_request(fixture("anthropic_request_review")).system_text.startswith(
        "You are a senior engineer"
    )
    view = view_request(fixture("openai_request_tools"))
    assert view.provider == "openai"
    assert view.system_text == "You are a helpful assistant."
    assert view.tool_names == ("get_current_weather",)
