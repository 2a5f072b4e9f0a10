"""Enforce mode's advice: when the window caps max_tokens below what the call asked for, the response
and the log line say how many input tokens must go (and which model's window fits), as plan does."""

from __future__ import annotations

import logging
import re
from typing import Any

import anthropic
import openai
import pytest

import tokenpilot as tp
from fake_upstream import FakeUpstream
from serve_support import fake, ledger, running_proxy, settings_for, upstream

ADVICE = re.compile(
    r"compact (\d+) input tokens for the full (\d+)-token answer \((\S+) max_tokens capped at (\d+)\)"
)


def _near_the_window(model: str, share: float) -> list[dict[str, Any]]:
    window = tp.get_model(model).context_window
    words = int(window * share)
    return [{"role": "user", "content": "rewrite every file in full. " + "word " * words}]


def test_a_squeezed_openai_call_gets_the_advice_header_and_log_line_through_the_sdk(
    upstream: FakeUpstream, ledger: tp.Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    model = "gpt-4o"
    info = tp.get_model(model)
    messages = _near_the_window(model, 0.95)
    asked = info.max_output_tokens
    assert asked is not None
    counted = tp.count_messages({"model": model, "messages": messages}, model=model)
    room = info.context_window - counted
    assert room < asked  # the window squeezes this call
    caplog.set_level(logging.INFO, logger="tokenpilot.serve")
    with running_proxy(settings_for(upstream.base_url, mode="enforce"), ledger) as proxy:
        client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="k", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=messages, max_tokens=asked, timeout=60
        )
        proxy.wait_settled()
    assert raw.parse().choices[0].message.content
    advice = raw.headers["x-tokenpilot-advice"]
    found = ADVICE.match(advice)
    assert found is not None, advice
    needed, full, named, capped = found.groups()
    assert named == model and int(full) == asked
    assert int(capped) == int(raw.headers["x-tokenpilot-max-tokens"]) == room
    assert int(needed) == asked - room
    assert upstream.received[0].json()["max_tokens"] == room
    lines = [r.getMessage() for r in caplog.records if "[TOKEN_BUDGET]" in r.getMessage()]
    assert len(lines) == 1 and f'advice="{advice}"' in lines[0]


def test_a_squeezed_anthropic_stream_gets_the_advice_header_through_the_sdk(
    upstream: FakeUpstream, ledger: tp.Ledger
) -> None:
    model = "claude-sonnet-4-6"
    info = tp.get_model(model)
    messages = _near_the_window(model, 0.7)  # the estimate counts more than one token per word
    asked = info.max_output_tokens
    assert asked is not None
    with running_proxy(settings_for(upstream.base_url, mode="enforce"), ledger) as proxy:
        client = anthropic.Anthropic(base_url=proxy.base_url, api_key="k", max_retries=0)
        with client.messages.with_streaming_response.create(
            model=model, messages=messages, max_tokens=asked, stream=True, timeout=60
        ) as response:
            events = list(response.iter_lines())
            headers = response.headers
        proxy.wait_settled()
    assert any("message_stop" in line for line in events)
    found = ADVICE.match(headers["x-tokenpilot-advice"])
    assert found is not None, headers["x-tokenpilot-advice"]
    needed, full, named, capped = found.groups()
    assert named == model and int(full) == asked
    assert int(capped) == int(headers["x-tokenpilot-max-tokens"]) < asked
    assert int(needed) == asked - int(capped)
    [record] = ledger.records()
    assert record.max_tokens == int(capped) and record.max_tokens_requested == asked


def test_a_call_the_window_does_not_squeeze_gets_no_advice(upstream: FakeUpstream, ledger: tp.Ledger) -> None:
    with running_proxy(settings_for(upstream.base_url, mode="enforce"), ledger) as proxy:
        client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="k", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hello"}], max_tokens=4000
        )
        proxy.wait_settled()
    assert raw.headers["x-tokenpilot-max-tokens"] == "4000"
    assert "x-tokenpilot-advice" not in raw.headers
