"""Observe mode is transparent: what real agents send reaches the upstream byte for byte.

The fixtures replay the shapes issue 12 records for Claude Code (eight anthropic-beta values, its
session header, a system message inside `messages`, context_management, output_config, adaptive
thinking, cache_control marks), Codex CLI (streamed Responses with encrypted reasoning and compaction
items, a namespace tool, client_metadata, prompt_cache_key, session headers) and Aider (a chat
stream without stream_options).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import tokenpilot as tp
from fake_upstream import FakeUpstream
from serve_support import HTTP, fake, ledger, running_proxy, settings_for, upstream

DATA = Path(__file__).parent / "data" / "serve"


def _fixture(name: str) -> tuple[dict[str, str], bytes]:
    recorded = json.loads((DATA / name).read_text())
    # The agents' own serialisers differ; keep an unusual spacing so any re-serialising would show.
    return recorded["headers"], json.dumps(recorded["body"], indent=None, separators=(", ", ": ")).encode()


def _post(base: str, path: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    return HTTP.post(base + path, content=body, headers=headers, timeout=30)


def _headers_arrived(sent: dict[str, str], received: Any) -> None:
    for name, value in sent.items():
        assert received.header(name) == value, name


@pytest.mark.parametrize(
    ("name", "path"),
    [("claude_code_say_hello.json", "/v1/messages"), ("codex_cli_turn.json", "/v1/responses")],
)
def test_agent_requests_reach_the_upstream_byte_for_byte_in_observe_mode(
    upstream: FakeUpstream, ledger: tp.Ledger, name: str, path: str
) -> None:
    headers, body = _fixture(name)
    with running_proxy(settings_for(upstream.base_url, mode="observe"), ledger) as proxy:
        reply = _post(proxy.base_url, path, headers, body)
        proxy.wait_settled()
    assert reply.status_code == 200
    [received] = upstream.received
    assert received.body == body
    _headers_arrived(headers, received)
    [record] = ledger.records()
    assert record.status == "ok" and record.input_tokens > 0


def test_claude_code_unknown_model_with_64000_max_tokens_goes_as_asked_in_enforce_mode(
    upstream: FakeUpstream, ledger: tp.Ledger
) -> None:
    headers, body = _fixture("claude_code_say_hello.json")
    body = body.replace(b'"claude-opus-4-8"', b'"claude-opus-9-9"')  # newer than any bundled registry
    with running_proxy(settings_for(upstream.base_url, mode="enforce"), ledger) as proxy:
        reply = _post(proxy.base_url, "/v1/messages", headers, body)
        proxy.wait_settled()
    assert reply.status_code == 200
    [received] = upstream.received
    assert received.json()["max_tokens"] == 64000  # never clamped on a guessed limit
    [record] = ledger.records()
    assert record.model == "claude-opus-9-9" and record.cost_usd is None and record.max_tokens == 64000
    if hasattr(record, "session"):
        assert record.session == headers["x-claude-code-session-id"]


def test_aider_chat_stream_gains_only_the_usage_request(upstream: FakeUpstream, ledger: tp.Ledger) -> None:
    headers, body = _fixture("aider_chat_turn.json")
    with running_proxy(settings_for(upstream.base_url, mode="observe"), ledger) as proxy:
        reply = _post(proxy.base_url, "/v1/chat/completions", headers, body)
        proxy.wait_settled()
    assert reply.status_code == 200 and '"usage":{' not in reply.text
    [received] = upstream.received
    assert received.body == b'{"stream_options":{"include_usage":true},' + body[1:]
    _headers_arrived(headers, received)
    assert ledger.records()[0].output_tokens == 8


def test_claude_code_count_tokens_burst_is_answered_locally(
    upstream: FakeUpstream, ledger: tp.Ledger
) -> None:
    headers, body = _fixture("claude_code_say_hello.json")
    payload = json.loads(body)
    for key in ("max_tokens", "stream", "metadata", "context_management", "output_config", "thinking"):
        payload.pop(key)
    count_body = json.dumps(payload).encode()
    with running_proxy(settings_for(upstream.base_url), ledger) as proxy, ThreadPoolExecutor(14) as pool:
        replies = list(
            pool.map(
                lambda _: _post(proxy.base_url, "/v1/messages/count_tokens", headers, count_body),
                range(14),
            )
        )
    assert {r.status_code for r in replies} == {200}
    counts = {r.json()["input_tokens"] for r in replies}
    assert len(counts) == 1 and counts.pop() > 1000
    assert {r.headers["x-tokenpilot-count"] for r in replies} <= {"exact", "estimate"}
    assert upstream.received == []  # nothing went upstream


def test_head_probe_and_other_v1_routes_are_answered_or_forwarded_untouched(
    upstream: FakeUpstream, ledger: tp.Ledger
) -> None:
    with running_proxy(settings_for(upstream.base_url), ledger) as proxy:
        assert HTTP.head(proxy.base_url + "/").status_code == 200
        models = HTTP.get(proxy.base_url + "/v1/models", headers={"authorization": "Bearer k"})
        other = HTTP.post(proxy.base_url + "/v1/embeddings?x=1", content=b'{"input": "a"}')
    assert models.status_code == 200 and models.json()["data"][0]["id"] == "gpt-4o"
    assert other.status_code == 404  # the fake has no such route: its answer came back as it was
    assert [(r.method, r.path, r.query) for r in upstream.received] == [
        ("GET", "/v1/models", b""),
        ("POST", "/v1/embeddings", b"x=1"),
    ]
    assert upstream.received[1].body == b'{"input": "a"}'


def test_a_cookie_the_upstream_sets_reaches_its_client_but_never_another_request(
    upstream: FakeUpstream, ledger: tp.Ledger
) -> None:
    # One-shot httpx calls: a client of its own would keep the cookie and send it back itself. The
    # upstream by host name: aiohttp's cookie jar ignores cookies from an IP address.
    by_name = upstream.base_url.replace("127.0.0.1", "localhost")
    with running_proxy(settings_for(by_name), ledger) as proxy:
        cookie = {"x-fake-set-cookie": "__cf_bm=abc; Path=/"}
        models = httpx.get(proxy.base_url + "/v1/models", headers=cookie, trust_env=False)
        assert models.headers["set-cookie"] == "__cf_bm=abc; Path=/"
        chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        assert httpx.post(proxy.base_url + "/v1/chat/completions", json=chat, trust_env=False).is_success
        httpx.get(proxy.base_url + "/v1/models", trust_env=False)
    assert [r.header("cookie") for r in upstream.received] == [None, None, None]
