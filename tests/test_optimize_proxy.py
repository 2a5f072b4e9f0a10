"""Optimize mode through the real proxy: a real `tokenpilot._serve.optimize.Optimizer` between an
agent's HTTP calls and a fake upstream (both real servers on 127.0.0.1)."""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

import tokenpilot as tp
from conversations import agent_turns
from fake_upstream import FakeUpstream
from serve_support import fake, ledger, running_proxy, settings_for, upstream

__all__ = ["fake", "ledger", "upstream"]  # fixtures


def _log(lines: int, run: int = 0) -> str:
    return "".join(f"tests/test_mod_{i}.py::test_case_{i}_{run} PASSED\n" for i in range(lines))


def _anthropic_run(turns: int, cache_control: bool = False) -> list[dict[str, Any]]:
    task: dict[str, Any] = {"type": "text", "text": "Make the test suite pass."}
    if cache_control:
        task["cache_control"] = {"type": "ephemeral"}
    history: list[dict[str, Any]] = [{"role": "user", "content": [task]}]
    for i in range(turns):
        use = {"type": "tool_use", "id": f"t{i}", "name": "bash", "input": {"command": f"pytest -k part{i}"}}
        history.append({"role": "assistant", "content": [{"type": "text", "text": f"Run part {i}."}, use]})
        history.append(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": f"t{i}", "content": _log(800, i)}],
            }
        )
    return history


def _send(base: str, history: list[dict[str, Any]], session: str) -> httpx.Response:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 500,
        "system": "You are an agent.",
        "messages": history,
    }
    return httpx.post(base + "/v1/messages", json=body, headers={"x-tokenpilot-session": session}, timeout=30)


def test_long_tool_outputs_reach_the_upstream_trimmed_with_a_handle_the_proxy_serves(
    upstream: FakeUpstream, ledger: tp.Ledger
) -> None:
    history = _anthropic_run(2)
    with running_proxy(settings_for(upstream.base_url, mode="optimize"), ledger) as proxy:
        reply = _send(proxy.base_url, history, "s1")
        proxy.wait_settled()
        sent = upstream.received[-1].json()
        assert reply.status_code == 200 and int(reply.headers["x-tokenpilot-compacted"].split()[0]) > 0
        assert tp.validate(sent, "anthropic") == ()
        output = sent["messages"][-1]["content"][0]["content"]
        assert tp.count_tokens(output, "claude-sonnet-4-5") <= 1_600 < tp.count_tokens(_log(800), "gpt-4o")
        handle = output.rsplit("tokenpilot spill show ", 1)[1].split("`", 1)[0]
        original = httpx.get(f"{proxy.base_url}/tokenpilot/spill/{handle}", timeout=10)
    assert original.status_code == 200 and original.text == _log(800, 1)
    [record] = ledger.records()
    assert record.optimize_actions and "clamp" in record.optimize_actions


def test_a_client_that_places_its_own_cache_control_keeps_exactly_its_breakpoints(
    upstream: FakeUpstream, ledger: tp.Ledger
) -> None:
    history = _anthropic_run(1, cache_control=True)
    with running_proxy(settings_for(upstream.base_url, mode="optimize"), ledger) as proxy:
        _send(proxy.base_url, copy.deepcopy(history), "s2")
        proxy.wait_settled()
    sent = upstream.received[-1].json()
    assert json.dumps(sent).count("cache_control") == 1
    assert sent["messages"][0] == history[0]


def test_a_growing_conversation_keeps_the_prefix_the_upstream_cached(
    upstream: FakeUpstream, ledger: tp.Ledger
) -> None:
    history = _anthropic_run(6)
    with running_proxy(settings_for(upstream.base_url, mode="optimize"), ledger) as proxy:
        for turns in range(3, 7):
            _send(proxy.base_url, history[: 2 * turns + 1], "s3")
        proxy.wait_settled()
    bodies = [r.json() for r in upstream.received[-4:]]
    actions = [r.optimize_actions or "" for r in sorted(ledger.records(), key=lambda r: r.ts)]
    assert not any(kind in a for a in actions for kind in ("mask", "dedupe", "compact_"))

    def plain(message: dict[str, Any]) -> str:  # breakpoints move; the cached content does not
        return json.dumps(message).replace(', "cache_control": {"type": "ephemeral"}', "")

    for before, after in itertools.pairwise(bodies):
        assert [plain(m) for m in after["messages"][: len(before["messages"])]] == [
            plain(m) for m in before["messages"]
        ]
        assert 1 <= json.dumps(after).count("cache_control") <= 4


SMALL = "tp-test-small"
_SMALL_MODEL = {
    "LIMIT": "6000",
    "TOKENIZER": "o200k_base",
    "INPUT_PRICE": "1.0",
    "CACHE_READ_PRICE": "1.0",
    "CACHE_WRITE_PRICE": "1.0",
}


def _through_the_proxy(proxy: Any, upstream: FakeUpstream, ledger: tp.Ledger, requests: list[Any]) -> None:
    provider = "anthropic" if "system" in requests[0] else "openai"
    path = "/v1/messages" if provider == "anthropic" else "/v1/chat/completions"
    session = uuid.uuid4().hex
    sent = []
    for body in requests:
        reply = httpx.post(
            proxy.base_url + path, json=body, headers={"x-tokenpilot-session": session}, timeout=30
        )
        assert reply.status_code == 200
        sent.append(upstream.received[-1].json())
    proxy.wait_settled()
    actions = [
        r.optimize_actions or "" for r in sorted(ledger.records(), key=lambda r: r.id) if r.session == session
    ]
    assert len(actions) == len(requests)
    window = tp.get_model(SMALL).context_window
    for i, (body, out) in enumerate(zip(requests, sent, strict=True)):
        assert tp.validate(out, provider) == ()
        assert tp.count_messages(out, model=SMALL) <= window
        assert "Fix the bug in parser.py" in json.dumps(out["messages"])  # the task is kept
        if provider == "openai":
            assert out["messages"][0] == body["messages"][0]  # the system prompt is kept
        else:  # the same text (a cache breakpoint may turn it into a block)
            system = out["system"]
            assert (system if isinstance(system, str) else "".join(b["text"] for b in system)) == body[
                "system"
            ]
        compacted = any(kind in actions[i] for kind in ("mask", "dedupe", "compact_"))
        if i and not compacted:
            before = [_plain(m) for m in sent[i - 1]["messages"]]
            assert [_plain(m) for m in out["messages"][: len(before)]] == before


def _plain(message: dict[str, Any]) -> str:
    return json.dumps(message).replace(', "cache_control": {"type": "ephemeral"}', "")


@pytest.fixture(scope="module")
def optimizing(
    fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, tp.Ledger]]:
    opened = tp.open_ledger(str(tmp_path_factory.mktemp("ledger") / "ledger.db"))
    with running_proxy(settings_for(fake.base_url, mode="optimize"), opened) as proxy:
        yield proxy, opened
    opened.close()


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_through_the_proxy_rewrites_fit_are_valid_keep_system_and_task_and_keep_the_prefix(
    provider: str, optimizing: tuple[Any, tp.Ledger], fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    for field, value in _SMALL_MODEL.items():
        monkeypatch.setenv(f"TOKENPILOT_MODEL_{field}_TP_TEST_SMALL", value)
    proxy, opened = optimizing

    @settings(
        max_examples=6,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(agent_turns(provider))
    def check(requests: list[Any]) -> None:
        _through_the_proxy(proxy, fake, opened, requests)

    check()
