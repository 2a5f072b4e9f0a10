"""The real OpenAI and Anthropic SDKs through the proxy: every shape, streamed and not, is recorded
with exactly the usage the (fake) provider reported, cache and reasoning fields included."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai
import pytest

import tokenpilot as tp
from fake_upstream import FakeUpstream
from serve_support import (
    fake,
    ledger,
    recorded_tokens,
    reported_tokens,
    running_proxy,
    settings_for,
    upstream,
)

CACHE_HEADERS = {"x-fake-cached": "12", "x-fake-cache-write": "5", "x-fake-reasoning": "3"}
LONG_INPUT = "Explain Python decorators, with an example of each kind. " * 4
MESSAGES = [{"role": "user", "content": "Explain Python decorators in one paragraph."}]


def _openai(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/v1", api_key="sk-test", max_retries=0)


def _anthropic(base: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base, api_key="sk-ant-test", max_retries=0)


def _chat(base: str, stream: bool, headers: dict[str, str]) -> str:
    client = _openai(base)
    if not stream:
        reply = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers=headers)  # type: ignore[arg-type]
        return reply.choices[0].message.content or ""
    chunks = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True},  # type: ignore[arg-type]
        extra_headers=headers,
    )  # fmt: skip
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def _responses(base: str, stream: bool, headers: dict[str, str]) -> str:
    client = _openai(base)
    if not stream:
        return client.responses.create(model="gpt-4o", input=LONG_INPUT, extra_headers=headers).output_text
    text = []
    with client.responses.stream(model="gpt-4o", input=LONG_INPUT, extra_headers=headers) as events:
        for event in events:
            if event.type == "response.output_text.delta":
                text.append(event.delta)
        assert events.get_final_response().usage is not None
    return "".join(text)


def _messages(base: str, stream: bool, headers: dict[str, str]) -> str:
    client = _anthropic(base)
    if not stream:
        reply = client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=256,
            messages=MESSAGES,
            extra_headers=headers,  # type: ignore[arg-type]
        )
        return "".join(block.text for block in reply.content if block.type == "text")
    with client.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=256,
        messages=MESSAGES,
        extra_headers=headers,  # type: ignore[arg-type]
    ) as events:
        return "".join(events.text_stream)


CALLERS = {"openai_chat": _chat, "openai_responses": _responses, "anthropic_messages": _messages}
SHAPES = [(api, stream) for api in CALLERS for stream in (False, True)]


@pytest.mark.parametrize("mode", ["observe", "enforce"])
@pytest.mark.parametrize(("api", "stream"), SHAPES)
def test_usage_recorded_equals_what_the_provider_reported(
    upstream: FakeUpstream, ledger: tp.Ledger, api: str, stream: bool, mode: str
) -> None:
    with running_proxy(settings_for(upstream.base_url, mode=mode), ledger) as proxy:
        text = CALLERS[api](proxy.base_url, stream, CACHE_HEADERS)
        proxy.wait_settled()
    assert text == "".join(f"tok{i} " for i in range(8))
    [reported] = upstream.reported
    assert reported.completed and reported.usage is not None
    [record] = ledger.records()
    assert recorded_tokens(record) == reported_tokens(api, reported.usage)
    assert record.cache_read_tokens == 12
    assert record.status == "ok"
    assert ledger.active_reservations() == 0


def test_chat_stream_without_stream_options_is_recorded_and_the_client_sees_no_usage_chunk(
    upstream: FakeUpstream, ledger: tp.Ledger
) -> None:
    body = {"model": "gpt-4o", "messages": MESSAGES, "stream": True}
    with running_proxy(settings_for(upstream.base_url), ledger) as proxy:
        raw = httpx.post(proxy.base_url + "/v1/chat/completions", json=body, timeout=10)
        proxy.wait_settled()
    events = [line for line in raw.text.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert not any('"choices":[]' in event for event in events)  # the usage-only chunk was cut out
    sent = upstream.received[-1].json()
    assert sent["stream_options"] == {"include_usage": True}  # asked upstream on the client's behalf
    [record] = ledger.records()
    [reported] = upstream.reported
    assert reported.usage is not None
    assert recorded_tokens(record) == reported_tokens("openai_chat", reported.usage)


def test_aider_style_stream_through_the_sdk_still_reads_every_token(
    upstream: FakeUpstream, ledger: tp.Ledger
) -> None:
    with running_proxy(settings_for(upstream.base_url), ledger) as proxy:
        chunks = list(
            _openai(proxy.base_url).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        )  # type: ignore[arg-type]
        proxy.wait_settled()
    assert all(chunk.usage is None for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith("tok0")
    assert ledger.records()[0].output_tokens == 8


def test_truncated_reply_is_recorded_with_its_finish_reason(
    upstream: FakeUpstream, ledger: tp.Ledger
) -> None:
    with running_proxy(settings_for(upstream.base_url), ledger) as proxy:
        _anthropic(proxy.base_url).messages.create(model="claude-sonnet-4-6", max_tokens=3, messages=MESSAGES)  # type: ignore[arg-type]
        proxy.wait_settled()
    [record] = ledger.records()
    assert record.finish_reason == "max_tokens" and record.truncated and record.output_tokens == 3


def test_broken_stream_without_usage_is_recorded_as_an_estimate_never_zero(
    upstream: FakeUpstream, ledger: tp.Ledger
) -> None:
    body = {"model": "claude-sonnet-4-6", "max_tokens": 256, "messages": MESSAGES, "stream": True}
    with running_proxy(settings_for(upstream.base_url), ledger) as proxy:
        reply = httpx.post(
            proxy.base_url + "/v1/messages", json=body, headers={"x-fake-no-usage": "1"}, timeout=10
        )
        proxy.wait_settled()
    assert reply.status_code == 200 and "message_stop" in reply.text
    [record] = ledger.records()
    assert record.input_tokens > 0 and record.output_tokens == 8
    if hasattr(record, "usage_estimated"):
        assert record.usage_estimated is True


def test_session_agent_and_phase_headers_reach_the_record(upstream: FakeUpstream, ledger: tp.Ledger) -> None:
    headers = {
        "x-tokenpilot-agent": "builder",
        "x-tokenpilot-phase": "build",
        "x-tokenpilot-scope": "acme/ci",
    }
    with running_proxy(settings_for(upstream.base_url), ledger) as proxy:
        _chat(proxy.base_url, False, headers)
        proxy.wait_settled()
    [record] = ledger.records()
    assert (record.scope, record.agent, record.phase) == ("acme/ci", "builder", "build")


def _record_fields(record: Any) -> dict[str, Any]:
    return record.as_dict()  # type: ignore[no-any-return]
