"""Hypothesis strategies for agent conversations in both formats (shared by the compact tests)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=40)
BIG = st.integers(min_value=0, max_value=4).map(
    lambda n: ("line of output with some_name.py\n" * (40 * 10**n))[:60_000]
)
OUTPUT = st.one_of(TEXT, BIG, st.just("ERROR: no such file"))


@st.composite
def openai_conversation(draw: Any, images: bool = True) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are an agent."},
        {"role": "user", "content": "Fix the bug in " + draw(TEXT)},
    ]
    turns = draw(st.integers(min_value=0, max_value=12))
    n = 0
    for _ in range(turns):
        calls = draw(st.integers(min_value=0, max_value=3))
        ids = [f"call_{n + i}" for i in range(calls)]
        n += calls
        message: dict[str, Any] = {"role": "assistant", "content": draw(TEXT)}
        if calls:
            message["tool_calls"] = [
                {
                    "id": cid,
                    "type": "function",
                    "function": {"name": "bash", "arguments": json.dumps({"command": draw(TEXT)})},
                }
                for cid in ids
            ]
        messages.append(message)
        for cid in ids:
            messages.append({"role": "tool", "tool_call_id": cid, "name": "bash", "content": draw(OUTPUT)})
        if images and draw(st.booleans()):
            messages.append(
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": draw(TEXT)},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    ],
                }
            )
    return messages


@st.composite
def anthropic_body(draw: Any) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Fix the bug in " + draw(TEXT)}]
    turns = draw(st.integers(min_value=0, max_value=12))
    n = 0
    for _ in range(turns):
        calls = draw(st.integers(min_value=0, max_value=3))
        ids = [f"toolu_{n + i}" for i in range(calls)]
        n += calls
        blocks: list[dict[str, Any]] = []
        if draw(st.booleans()):
            blocks.append({"type": "thinking", "thinking": draw(TEXT), "signature": "sig"})
        blocks.append({"type": "text", "text": draw(TEXT) or "ok"})
        blocks += [
            {"type": "tool_use", "id": cid, "name": "bash", "input": {"command": draw(TEXT)}} for cid in ids
        ]
        messages.append({"role": "assistant", "content": blocks})
        reply: list[dict[str, Any]] = [
            {"type": "tool_result", "tool_use_id": cid, "content": draw(OUTPUT)} for cid in ids
        ]
        if draw(st.booleans()):
            reply.append(
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
            )
        reply.append({"type": "text", "text": draw(TEXT) or "go on"})
        messages.append({"role": "user", "content": reply})
    return {"model": "gpt-4o", "system": "You are an agent.", "max_tokens": 1024, "messages": messages}


def bash_run(turns: int, output: Callable[[int], str]) -> list[dict[str, Any]]:
    """A plain OpenAI agent run: system, task, then `turns` bash calls with `output(i)` each."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "s"}, {"role": "user", "content": "task"}]
    for i in range(turns):
        call = {"id": f"c{i}", "type": "function", "function": {"name": "bash", "arguments": "{}"}}
        messages.append({"role": "assistant", "content": f"step {i}", "tool_calls": [call]})
        messages.append({"role": "tool", "tool_call_id": f"c{i}", "content": output(i)})
    return messages


@st.composite
def agent_turns(draw: Any, provider: str, model: str = "tp-test-small") -> list[Any]:
    """The requests of one agent run: each the previous one plus a turn (OpenAI or Anthropic)."""
    turns = draw(st.integers(min_value=1, max_value=14))
    outputs = st.one_of(TEXT, BIG.map(lambda s: s[:8_000]))
    if provider == "openai":
        history: list[dict[str, Any]] = [
            {"role": "system", "content": "You are an agent."},
            {"role": "user", "content": "Fix the bug in parser.py"},
        ]
    else:
        history = [{"role": "user", "content": "Fix the bug in parser.py"}]
    requests = []
    for i in range(turns):
        command = json.dumps({"command": f"cat file_{i}.py"})
        output = draw(outputs) or "ok"
        if provider == "openai":
            call = {"id": f"c{i}", "type": "function", "function": {"name": "bash", "arguments": command}}
            history.append({"role": "assistant", "content": f"step {i}", "tool_calls": [call]})
            history.append({"role": "tool", "tool_call_id": f"c{i}", "content": output})
        else:
            use = {"type": "tool_use", "id": f"t{i}", "name": "bash", "input": json.loads(command)}
            history.append({"role": "assistant", "content": [{"type": "text", "text": f"step {i}"}, use]})
            history.append(
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": f"t{i}", "content": output}],
                }
            )
        if provider == "openai":
            requests.append({"model": model, "messages": copy.deepcopy(history)})
        else:
            requests.append(
                {
                    "model": model,
                    "system": "You are an agent.",
                    "max_tokens": 500,
                    "messages": copy.deepcopy(history),
                }
            )
    return requests
