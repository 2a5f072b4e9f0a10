"""Tool calls through the proxy, with the real SDKs: the fake's tool-call script (x-fake-tool-calls) is
answered as each provider answers a tool call, streamed and not; the SDKs parse it, the next turn (with
the tool's result) gets text, and each turn is in the ledger with the fake's usage (how agents such as
OpenHands run a loop)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
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

SCRIPT = [["terminal", {"command": "echo hello"}], ["finish", {"message": "done"}]]
HEADERS = {"x-fake-tool-calls": json.dumps(SCRIPT)}
TOOL = {"name": "terminal", "description": "run a command", "parameters": {"type": "object"}}


def _chat(base: str, stream: bool, messages: list[dict[str, Any]]) -> tuple[str | None, dict[str, Any], str]:
    """One chat turn: (tool name or None, its arguments, the text or the call id)."""
    client = openai.OpenAI(base_url=base + "/v1", api_key="sk-test", max_retries=0)
    tools = [{"type": "function", "function": TOOL}]
    if not stream:
        reply = client.chat.completions.create(
            model="gpt-4o", messages=messages, tools=tools, extra_headers=HEADERS  # type: ignore[arg-type]
        )  # fmt: skip
        message = reply.choices[0].message
        if not message.tool_calls:
            return None, {}, message.content or ""
        call = message.tool_calls[0]
        assert reply.choices[0].finish_reason == "tool_calls"
        return call.function.name, json.loads(call.function.arguments), call.id  # type: ignore[union-attr]
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=messages, tools=tools, stream=True, extra_headers=HEADERS  # type: ignore[arg-type]
        )
    )  # fmt: skip
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    calls = [t for d in deltas for t in d.tool_calls or []]
    if not calls:
        return None, {}, "".join(d.content or "" for d in deltas)
    name = next(t.function.name for t in calls if t.function and t.function.name)
    arguments = "".join(t.function.arguments or "" for t in calls if t.function)
    return name, json.loads(arguments), next(t.id for t in calls if t.id)


def _chat_loop(base: str, stream: bool) -> list[str | None]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "say hello"}]
    names = []
    for _ in range(3):
        name, arguments, said = _chat(base, stream, messages)
        names.append(name)
        if name is None:
            assert said.startswith("tok0")
            break
        assert arguments == dict(SCRIPT[len(names) - 1][1])  # type: ignore[arg-type]
        call = {
            "id": said,
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)},
        }
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        messages.append({"role": "tool", "tool_call_id": said, "content": "ok"})
    return names


def _responses_loop(base: str, stream: bool) -> list[str | None]:
    client = openai.OpenAI(base_url=base + "/v1", api_key="sk-test", max_retries=0)
    items: list[Any] = [{"role": "user", "content": "say hello"}]
    tools = [{"type": "function", **TOOL}]
    names: list[str | None] = []
    for _ in range(3):
        if stream:
            with client.responses.stream(
                model="gpt-4o", input=items, tools=tools, extra_headers=HEADERS  # type: ignore[arg-type]
            ) as events:  # fmt: skip
                for _event in events:
                    pass
                response = events.get_final_response()
        else:
            response = client.responses.create(
                model="gpt-4o", input=items, tools=tools, extra_headers=HEADERS
            )  # type: ignore[arg-type]
        calls = [item for item in response.output if item.type == "function_call"]
        if not calls:
            names.append(None)
            assert response.output_text.startswith("tok0")
            break
        call = calls[0]
        names.append(call.name)
        assert json.loads(call.arguments) == SCRIPT[len(names) - 1][1]
        items.append(
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments}
        )
        items.append({"type": "function_call_output", "call_id": call.call_id, "output": "ok"})
    return names


def _messages_loop(base: str, stream: bool) -> list[str | None]:
    client = anthropic.Anthropic(base_url=base, api_key="sk-ant-test", max_retries=0)
    messages: list[Any] = [{"role": "user", "content": "say hello"}]
    tools = [{"name": TOOL["name"], "description": TOOL["description"], "input_schema": TOOL["parameters"]}]
    names: list[str | None] = []
    for _ in range(3):
        ask: Any = {"model": "claude-sonnet-4-6", "max_tokens": 256, "messages": messages, "tools": tools}
        ask["extra_headers"] = HEADERS
        if stream:
            with client.messages.stream(**ask) as events:
                reply = events.get_final_message()
        else:
            reply = client.messages.create(**ask)
        uses = [block for block in reply.content if block.type == "tool_use"]
        if not uses:
            names.append(None)
            assert "".join(b.text for b in reply.content if b.type == "text").startswith("tok0")
            break
        use = uses[0]
        names.append(use.name)
        assert reply.stop_reason == "tool_use"
        assert use.input == SCRIPT[len(names) - 1][1]
        messages.append({"role": "assistant", "content": [use.model_dump()]})
        messages.append(
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "ok"}]}
        )
    return names


LOOPS = {"openai_chat": _chat_loop, "openai_responses": _responses_loop, "anthropic_messages": _messages_loop}


@pytest.mark.parametrize("mode", ["observe", "enforce"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("api", list(LOOPS))
def test_a_scripted_tool_loop_runs_through_the_proxy_and_every_turn_is_recorded_with_the_fakes_usage(
    upstream: FakeUpstream, ledger: tp.Ledger, api: str, stream: bool, mode: str
) -> None:
    with running_proxy(settings_for(upstream.base_url, mode=mode), ledger=ledger) as proxy:
        names = LOOPS[api](proxy.base_url, stream)
        proxy.wait_settled()
    assert names == ["terminal", "finish", None]
    records = ledger.records()
    reported = [r for r in upstream.reported if r.api == api]
    assert len(records) == len(reported) == 3
    assert all(r.status == "ok" for r in records)
    assert all(sent.usage is not None for sent in reported)
    # the ledger's order is the order settlements were written (a batch handed to the pool may land
    # after a later one): each turn's usage must be recorded once, whatever the order
    recorded = sorted(sorted(recorded_tokens(r).items()) for r in records)
    assert recorded == sorted(sorted(reported_tokens(api, sent.usage).items()) for sent in reported)


def test_a_tool_call_script_set_on_the_fake_answers_requests_that_carry_no_header() -> None:
    with FakeUpstream(tool_calls=(("finish", {"message": "done"}),)) as scripted:
        client = openai.OpenAI(base_url=scripted.base_url + "/v1", api_key="sk-test", max_retries=0)
        reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    call = reply.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert (call.function.name, json.loads(call.function.arguments)) == ("finish", {"message": "done"})  # type: ignore[union-attr]


def test_without_a_script_the_fake_answers_text_as_before(upstream: FakeUpstream) -> None:
    client = openai.OpenAI(base_url=upstream.base_url + "/v1", api_key="sk-test", max_retries=0)
    reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.tool_calls is None
    assert reply.choices[0].message.content == "".join(f"tok{i} " for i in range(8))
    assert reply.choices[0].finish_reason == "stop"


__all__ = ["fake", "ledger", "upstream"]
