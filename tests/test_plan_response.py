"""check_response on documented OpenAI and Anthropic response bodies."""

from __future__ import annotations

import pytest

import tokenpilot as tp
from plan_support import fixture


def test_openai_stop_is_complete() -> None:
    check = tp.check_response(fixture("openai_response_stop"))
    assert (check.provider, check.truncated, check.finish_reason) == ("openai", False, "stop")
    assert (check.input_tokens, check.output_tokens) == (19, 10)


def test_openai_length_is_truncated_and_cached_tokens_are_split_out() -> None:
    check = tp.check_response(fixture("openai_response_length"))
    assert check.truncated and check.reason == "max_tokens" and check.finish_reason == "length"
    assert (check.input_tokens, check.cache_read_tokens, check.output_tokens) == (1200 - 1024, 1024, 300)


def test_openai_tool_calls_is_complete() -> None:
    assert not tp.check_response(fixture("openai_response_tool_calls")).truncated


def test_openai_any_truncated_choice_marks_the_response_truncated() -> None:
    body = fixture("openai_response_stop")
    second = dict(body["choices"][0], index=1, finish_reason="length")
    body["choices"].append(second)
    assert tp.check_response(body).truncated


def test_anthropic_end_turn_and_tool_use_are_complete() -> None:
    for name in ("anthropic_response_end_turn", "anthropic_response_tool_use"):
        check = tp.check_response(fixture(name))
        assert check.provider == "anthropic" and not check.truncated and check.reason is None


def test_anthropic_max_tokens_is_truncated() -> None:
    check = tp.check_response(fixture("anthropic_response_max_tokens"))
    assert check.truncated and check.reason == "max_tokens" and check.finish_reason == "max_tokens"
    assert (check.input_tokens, check.output_tokens, check.cache_read_tokens) == (3120, 1024, 2048)


def test_anthropic_context_window_exceeded_is_truncated_by_the_window() -> None:
    check = tp.check_response(fixture("anthropic_response_window_exceeded"))
    assert check.truncated and check.reason == "context_window"
    assert check.finish_reason == "model_context_window_exceeded"


def test_openai_responses_incomplete_max_output_tokens_is_truncated() -> None:
    check = tp.check_response(fixture("openai_responses_incomplete"))
    assert check.truncated and check.output_tokens == 52


@pytest.mark.parametrize("name", ["anthropic_error_overloaded", "openai_error_rate_limit"])
def test_error_bodies_are_not_responses(name: str) -> None:
    with pytest.raises(tp.InputError, match="failover"):
        tp.check_response(fixture(name))


def test_unknown_shapes_are_an_input_error() -> None:
    with pytest.raises(tp.InputError, match="not a response"):
        tp.check_response({"hello": "world"})
    with pytest.raises(tp.InputError):
        tp.check_response(["not", "a", "dict"])  # type: ignore[arg-type]
