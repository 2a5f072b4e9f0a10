"""The optimize hook: one Optimizer(settings) at start-up, `rewrite(...)` per call, its result
validated before it is forwarded; any failure forwards the original. And the spill route."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

import tokenpilot as tp
from fake_upstream import FakeUpstream
from serve_support import HTTP, fake, ledger, running_proxy, settings_for, upstream
from tokenpilot._trim._spill import read_spill, spill

BODY = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 400,
    "messages": [
        {"role": "user", "content": "run the tests"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "bash", "input": {"c": "pytest"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x" * 4000}]},
    ],
}


@dataclass(frozen=True)
class Optimized:
    body: dict[str, Any]
    tokens_before: int
    tokens_after: int
    actions: tuple[str, ...]
    removed: int


class RecordingOptimizer:
    calls: ClassVar[list[dict[str, Any]]] = []
    behaviour: ClassVar[str] = "trim"

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def rewrite(
        self, api: str, body: dict[str, Any], *, model: str, session_key: str | None, headers: Any
    ) -> Any:
        RecordingOptimizer.calls.append(
            {"api": api, "model": model, "session_key": session_key, "headers": headers}
        )
        if self.behaviour == "raise":
            raise RuntimeError("optimizer broke")
        messages = [dict(m) for m in body["messages"]]
        if self.behaviour == "invalid":
            messages = [messages[0], messages[2]]  # a tool result without its call
        else:
            messages[2] = {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x…"}],
            }
        return Optimized({**body, "messages": messages}, 1100, 100, ("trim_tool_output",), 1000)


@pytest.fixture
def optimizer(monkeypatch: pytest.MonkeyPatch) -> type[RecordingOptimizer]:
    module = types.ModuleType("tokenpilot._serve.optimize")
    module.Optimizer = RecordingOptimizer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tokenpilot._serve.optimize", module)
    import tokenpilot._serve

    # `from tokenpilot._serve import optimize` finds the package attribute first, once imported.
    monkeypatch.setattr(tokenpilot._serve, "optimize", module, raising=False)
    RecordingOptimizer.calls = []
    RecordingOptimizer.behaviour = "trim"
    return RecordingOptimizer


def _call(base: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return HTTP.post(base + "/v1/messages", json=BODY, headers=headers or {}, timeout=10)


def test_a_valid_rewrite_is_forwarded_recorded_and_announced(
    upstream: FakeUpstream, ledger: tp.Ledger, optimizer: type[RecordingOptimizer]
) -> None:
    with running_proxy(settings_for(upstream.base_url, mode="optimize"), ledger) as proxy:
        reply = _call(proxy.base_url, {"x-claude-code-session-id": "cc-1", "x-api-key": "secret"})
        proxy.wait_settled()
    assert reply.status_code == 200
    assert reply.headers["x-tokenpilot-compacted"] == "1000 tokens removed"
    sent = upstream.received[0].json()
    assert sent["messages"][2]["content"][0]["content"] == "x…"
    [call] = optimizer.calls
    assert call["api"] == "anthropic_messages" and call["model"] == "claude-sonnet-4-6"
    assert call["session_key"] == "cc-1"
    assert "x-api-key" not in call["headers"]  # credentials are not handed to the optimizer
    [record] = ledger.records()
    assert (record.optimized_from, record.optimized_to) == (1100, 100)
    assert record.optimize_actions == "trim_tool_output"
    assert record.session == "cc-1"


@pytest.mark.parametrize("behaviour", ["raise", "invalid"])
def test_a_failing_or_invalid_rewrite_forwards_the_original(
    upstream: FakeUpstream, ledger: tp.Ledger, optimizer: type[RecordingOptimizer], behaviour: str
) -> None:
    optimizer.behaviour = behaviour
    with running_proxy(settings_for(upstream.base_url, mode="optimize"), ledger) as proxy:
        reply = _call(proxy.base_url)
        proxy.wait_settled()
    assert reply.status_code == 200 and "x-tokenpilot-compacted" not in reply.headers
    assert upstream.received[0].json() == BODY
    [record] = ledger.records()
    assert record.optimized_from is None


def test_optimize_without_an_optimizer_behaves_as_enforce(upstream: FakeUpstream, ledger: tp.Ledger) -> None:
    ledger.set_budget("serve", tokens=50)
    with running_proxy(settings_for(upstream.base_url, mode="optimize"), ledger) as proxy:
        reply = _call(proxy.base_url)
    assert reply.status_code == 429 and reply.headers["x-tokenpilot-refused"] == "budget"


def test_the_spill_route_returns_the_original_of_a_trimmed_output(
    upstream: FakeUpstream, ledger: tp.Ledger, tmp_path: Path
) -> None:
    path = spill([b"line 1\n", b"line 2\n"])
    with running_proxy(settings_for(upstream.base_url), ledger) as proxy:
        found = HTTP.get(f"{proxy.base_url}/tokenpilot/spill/{path.stem}")
        missing = HTTP.get(f"{proxy.base_url}/tokenpilot/spill/{'0' * 32}")
        hostile = HTTP.get(f"{proxy.base_url}/tokenpilot/spill/..%2F..%2Fetc%2Fpasswd")
    assert found.status_code == 200 and found.text == "line 1\nline 2\n"
    assert missing.status_code == 404 and hostile.status_code == 404


def test_read_spill_reads_a_handle_and_refuses_anything_but_a_hash(tmp_path: Path) -> None:
    path = spill([b"original output"], directory=tmp_path)
    assert read_spill(path.stem, tmp_path) == "original output"
    assert read_spill(path.name, tmp_path) == "original output"
    assert read_spill("../" + path.stem, tmp_path) is None
    assert read_spill("f" * 32, tmp_path) is None
