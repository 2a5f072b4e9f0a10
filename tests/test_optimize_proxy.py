"""Optimize mode through the real proxy: a real `tokenpilot._serve.optimize.Optimizer` between an
agent's HTTP calls and a fake upstream (both real servers on 127.0.0.1)."""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import httpx

import tokenpilot as tp
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
