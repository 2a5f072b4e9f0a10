"""The usage normaliser: each provider's documented shape, and streams read the same however the
bytes are cut into chunks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenpilot._serve.usage import (
    StreamTracker,
    TokenUsage,
    from_anthropic,
    from_openai_chat,
    from_openai_responses,
    read_body,
)


def test_openai_chat_prompt_tokens_already_include_the_cached_ones() -> None:
    usage = {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920},
        "completion_tokens_details": {"reasoning_tokens": 64},
    }
    assert from_openai_chat(usage) == TokenUsage(2006, 300, 1920, 0, 64)


def test_responses_input_tokens_details_are_read() -> None:
    usage = {
        "input_tokens": 5000,
        "input_tokens_details": {"cached_tokens": 4096},
        "output_tokens": 900,
        "output_tokens_details": {"reasoning_tokens": 512},
    }
    assert from_openai_responses(usage) == TokenUsage(5000, 900, 4096, 0, 512)


def test_anthropic_input_tokens_exclude_cache_reads_and_writes_so_they_are_added_back() -> None:
    usage = {
        "input_tokens": 50,
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 200,
        "output_tokens": 7,
    }
    assert from_anthropic(usage) == TokenUsage(1250, 7, 1000, 200, 0)


def test_missing_or_null_fields_read_as_nothing_never_an_error() -> None:
    assert from_openai_chat(None) is None
    assert from_anthropic({"input_tokens": 3, "cache_read_input_tokens": None}) == TokenUsage(3)
    assert read_body("openai_chat", b"not json").usage is None


def _sse(data: object, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


ANTHROPIC_STREAM = b"".join(
    [
        _sse(
            {
                "type": "message_start",
                "message": {
                    "model": "claude-x",
                    "usage": {
                        "input_tokens": 10,
                        "cache_read_input_tokens": 90,
                        "cache_creation_input_tokens": 5,
                        "output_tokens": 1,
                    },
                },
            },
            "message_start",
        ),
        _sse(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hé"}},
            "content_block_delta",
        ),
        _sse(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "llo"}},
            "content_block_delta",
        ),
        _sse(
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 42}},
            "message_delta",
        ),
        _sse({"type": "message_stop"}, "message_stop"),
    ]
)
CHAT_STREAM = b"".join(
    [
        _sse({"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}], "usage": None}),
        _sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": None}),
        _sse(
            {
                "choices": [],
                "usage": {
                    "prompt_tokens": 30,
                    "completion_tokens": 2,
                    "prompt_tokens_details": {"cached_tokens": 10},
                },
            }
        ),
        b"data: [DONE]\n\n",
    ]
)


def _feed(api: str, stream: bytes, cuts: list[int], strip: bool = False) -> tuple[StreamTracker, bytes]:
    tracker = StreamTracker(api, strip_usage=strip)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    out = b"".join(tracker.feed(piece) for piece in pieces) + tracker.flush()
    return tracker, out


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_a_stream_reads_the_same_usage_however_it_is_chunked(cuts: list[int]) -> None:
    tracker, out = _feed("anthropic_messages", ANTHROPIC_STREAM, cuts)
    assert out == ANTHROPIC_STREAM
    assert tracker.usage == TokenUsage(105, 42, 90, 5, 0)
    assert tracker.finish_reason == "end_turn" and tracker.completed and tracker.deltas == 2


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_stripping_removes_exactly_the_usage_chunk_however_it_is_chunked(cuts: list[int]) -> None:
    tracker, out = _feed("openai_chat", CHAT_STREAM, cuts, strip=True)
    usage_event = CHAT_STREAM.split(b"\n\n")[2] + b"\n\n"
    assert out == CHAT_STREAM.replace(usage_event, b"")
    assert tracker.usage == TokenUsage(30, 2, 10, 0, 0)
    assert tracker.finish_reason == "stop"


def _compact(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


COMPACT_CHAT = b"".join(
    [
        _compact(
            {"model": "gpt-x", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
        ),
        *(
            _compact(
                {"choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}], "usage": None}
            )
            for w in ("one", " two", " three")
        ),
        _compact({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0}]}, "finish_reason": None}]}),
        _compact({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}], "usage": None}),
        _compact({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 4}}),
        b"data: [DONE]\n\n",
    ]
)
RESPONSES_STREAM = b"".join(
    [
        _compact({"type": "response.created", "response": {"status": "in_progress"}}, "response.created"),
        _compact({"type": "response.output_text.delta", "delta": "a"}, "response.output_text.delta"),
        _compact({"type": "response.output_text.delta", "delta": "b"}, "response.output_text.delta"),
        _compact(
            {
                "type": "response.completed",
                "response": {
                    "status": "completed",
                    "model": "gpt-r",
                    "usage": {"input_tokens": 7, "output_tokens": 2},
                },
            },
            "response.completed",
        ),
    ]
)
STREAMS = {
    "chat compact": ("openai_chat", COMPACT_CHAT),
    "chat spaced": ("openai_chat", CHAT_STREAM),
    "responses": ("openai_responses", RESPONSES_STREAM),
    "anthropic": ("anthropic_messages", ANTHROPIC_STREAM),
    "anthropic compact": ("anthropic_messages", ANTHROPIC_STREAM.replace(b": ", b":").replace(b", ", b",")),
}


def _read(tracker: StreamTracker) -> tuple[Any, ...]:
    return (tracker.usage, tracker.finish_reason, tracker.completed, tracker.deltas, tracker.response_model)


@pytest.mark.parametrize("name", sorted(STREAMS))
@given(cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_a_stream_read_in_any_chunks_reads_as_it_does_event_by_event(name: str, cuts: list[int]) -> None:
    api, stream = STREAMS[name]
    one_by_one = StreamTracker(api)
    for event in stream.split(b"\n\n")[:-1]:
        one_by_one.feed(event + b"\n\n")
    one_by_one.flush()
    tracker, out = _feed(api, stream, cuts)
    assert out == stream
    assert _read(tracker) == _read(one_by_one)
    assert tracker.usage is not None and tracker.completed and tracker.deltas > 0
