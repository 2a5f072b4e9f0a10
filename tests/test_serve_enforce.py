"""Enforce mode: budgets hold before any upstream call, under concurrency, faults and disconnects."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

import anthropic
import httpx
import openai
import pytest

import tokenpilot as tp
from fake_upstream import FakeUpstream
from ledger_support import store_url
from serve_support import HTTP, fake, free_port, ledger, running_proxy, settings_for, upstream

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Summarise the design document."}]}
MESSAGES = {"model": "claude-sonnet-4-6", "max_tokens": 512, "messages": CHAT["messages"]}


def _enforce(base: str, **changes: Any) -> Any:
    return settings_for(base, mode="enforce", **changes)


def _sdk_attempts(base: str, sdk: str) -> tuple[int, str]:
    """How many requests the real SDK (one retry allowed) sent for one call, and the error it raised."""
    sent: list[str] = []
    hooks = {"request": [lambda request: sent.append(request.url.path)]}
    headers = {"x-tokenpilot-scope": "team/a"}
    try:
        if sdk == "openai":
            http = openai.DefaultHttpxClient(event_hooks=hooks)
            o = openai.OpenAI(base_url=base + "/v1", api_key="sk-x", max_retries=1, http_client=http)
            o.chat.completions.create(**CHAT, extra_headers=headers)
        else:
            http = anthropic.DefaultHttpxClient(event_hooks=hooks)
            a = anthropic.Anthropic(base_url=base, api_key="sk-x", max_retries=1, http_client=http)
            a.messages.create(**MESSAGES, extra_headers=headers)
    except (openai.RateLimitError, anthropic.RateLimitError) as refused:
        return len(sent), str(refused)
    raise AssertionError("the call was not refused")


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_the_sdks_do_not_retry_a_budget_that_is_spent_but_do_retry_one_that_holds_block(
    upstream: FakeUpstream, ledger: tp.Ledger, sdk: str
) -> None:
    ledger.set_budget("team", tokens=100)
    with running_proxy(_enforce(upstream.base_url), ledger) as proxy:
        attempts, message = _sdk_attempts(proxy.base_url, sdk)
        assert attempts == 1 and "'team'" in message  # spent or not, 100 tokens cannot hold this call
        ledger.set_budget("team", tokens=5_000)
        with ledger.reserve("team/other", model="gpt-4o", input_tokens=4_990, max_output_tokens=0):
            attempts, _ = _sdk_attempts(proxy.base_url, sdk)  # another call's hold: may clear soon
        assert attempts == 2
    assert upstream.received == [] and ledger.active_reservations() == 0


@pytest.mark.parametrize(("path", "body"), [("/v1/chat/completions", CHAT), ("/v1/messages", MESSAGES)])
def test_a_call_over_budget_gets_429_in_the_providers_shape_before_any_upstream_call(
    upstream: FakeUpstream, ledger: tp.Ledger, path: str, body: dict[str, Any]
) -> None:
    ledger.set_budget("team", tokens=100)
    with running_proxy(_enforce(upstream.base_url), ledger) as proxy:
        reply = HTTP.post(proxy.base_url + path, json=body, headers={"x-tokenpilot-scope": "team/a"})
    assert reply.status_code == 429
    assert reply.headers["x-tokenpilot-refused"] == "budget"
    error = reply.json()
    message = error["error"]["message"]
    assert "'team'" in message and "limit 100" in message and "spent 0" in message and "requested" in message
    if path == "/v1/messages":
        assert error["type"] == "error" and error["error"]["type"] == "rate_limit_error"
    else:
        assert error["error"]["code"] == "budget_exceeded"
    assert upstream.received == []
    assert ledger.active_reservations() == 0


def test_the_sdks_see_a_refusal_as_their_rate_limit_error(upstream: FakeUpstream, ledger: tp.Ledger) -> None:
    ledger.set_budget("serve", tokens=10)
    with running_proxy(_enforce(upstream.base_url), ledger) as proxy:
        with pytest.raises(openai.RateLimitError):
            openai.OpenAI(
                base_url=proxy.base_url + "/v1", api_key="k", max_retries=0
            ).chat.completions.create(**CHAT)
        with pytest.raises(anthropic.RateLimitError):
            anthropic.Anthropic(base_url=proxy.base_url, api_key="k", max_retries=0).messages.create(
                **MESSAGES
            )


def test_max_tokens_is_set_when_absent_and_reported_in_a_header(
    upstream: FakeUpstream, ledger: tp.Ledger
) -> None:
    with running_proxy(_enforce(upstream.base_url), ledger) as proxy:
        reply = HTTP.post(proxy.base_url + "/v1/chat/completions", json=CHAT)
        proxy.wait_settled()
    limit = tp.get_model("gpt-4o").max_output_tokens
    assert reply.headers["x-tokenpilot-max-tokens"] == str(limit)
    assert upstream.received[0].json()["max_completion_tokens"] == limit
    [record] = ledger.records()
    assert record.max_tokens == limit and record.max_tokens_requested is None


def test_max_tokens_is_clamped_to_what_the_remaining_budget_allows(
    upstream: FakeUpstream, ledger: tp.Ledger
) -> None:
    ledger.set_budget("serve", tokens=3000)
    body = {**MESSAGES, "max_tokens": 60000}
    with running_proxy(_enforce(upstream.base_url), ledger) as proxy:
        reply = HTTP.post(proxy.base_url + "/v1/messages", json=body)
        proxy.wait_settled()
    assert reply.status_code == 200
    sent = upstream.received[0].json()["max_tokens"]
    assert 0 < sent < 3000 and reply.headers["x-tokenpilot-max-tokens"] == str(sent)
    [record] = ledger.records()
    assert record.max_tokens_requested == 60000 and record.max_tokens == sent
    assert ledger.usage("serve").spent <= 3000


def test_a_prompt_over_the_window_gets_a_clear_error_before_any_upstream_call(
    upstream: FakeUpstream, ledger: tp.Ledger
) -> None:
    window = tp.get_model("claude-sonnet-4-6").context_window
    huge = {
        **MESSAGES,
        "messages": [{"role": "user", "content": "lorem ipsum dolor sit amet " * (window // 4)}],
    }
    with running_proxy(_enforce(upstream.base_url), ledger) as proxy:
        reply = HTTP.post(proxy.base_url + "/v1/messages", json=huge, timeout=60)
    assert reply.status_code == 400
    assert reply.json()["error"]["message"].startswith("prompt is too long:")
    assert upstream.received == []


@pytest.mark.parametrize(("path", "body"), [("/v1/chat/completions", CHAT), ("/v1/messages", MESSAGES)])
@pytest.mark.parametrize("mode", ["observe", "enforce"])
def test_bad_json_or_a_body_of_the_wrong_shape_gets_400_in_the_providers_shape(
    upstream: FakeUpstream, ledger: tp.Ledger, path: str, body: dict[str, Any], mode: str
) -> None:
    with running_proxy(settings_for(upstream.base_url, mode=mode), ledger) as proxy:
        broken = HTTP.post(proxy.base_url + path, content=b'{"model": "gpt-4o", "messages": [')
        shapeless = HTTP.post(proxy.base_url + path, json={"model": body["model"], "messages": "hi"})
    for reply in (broken, shapeless):
        assert reply.status_code == 400
        error = reply.json()
        assert error["error"]["type"] == "invalid_request_error"
        assert ("type" in error) == (path == "/v1/messages")
    assert upstream.received == []


@pytest.mark.parametrize(("path", "body"), [("/v1/chat/completions", CHAT), ("/v1/messages", MESSAGES)])
def test_an_unreachable_upstream_gets_502_and_leaves_no_reservation(
    ledger: tp.Ledger, path: str, body: dict[str, Any]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with running_proxy(_enforce(dead), ledger) as proxy:
        reply = HTTP.post(proxy.base_url + path, json=body)
        proxy.wait_settled()
    assert reply.status_code == 502
    assert "could not reach" in reply.json()["error"]["message"]
    [record] = ledger.records()
    assert record.status == "error" and record.http_status == 502 and record.input_tokens == 0
    assert ledger.active_reservations() == 0


@pytest.mark.parametrize(
    ("status", "recorded"), [(429, "rate_limited"), (529, "rate_limited"), (500, "error")]
)
def test_upstream_errors_are_forwarded_as_they_came_and_recorded(
    upstream: FakeUpstream, ledger: tp.Ledger, status: int, recorded: str
) -> None:
    headers = {"x-fake-status": str(status), "x-fake-retry-after": "7"}
    with running_proxy(_enforce(upstream.base_url), ledger) as proxy:
        reply = HTTP.post(proxy.base_url + "/v1/messages", json=MESSAGES, headers=headers)
        proxy.wait_settled()
    assert reply.status_code == status and reply.headers["retry-after"] == "7"
    assert reply.json()["error"]["message"] == f"fake {status}"
    [record] = ledger.records()
    assert record.status == recorded and record.http_status == status and record.input_tokens == 0
    assert ledger.active_reservations() == 0


@pytest.mark.parametrize("mode", ["observe", "enforce"])
def test_a_client_that_disconnects_mid_stream_leaves_no_reservation(
    upstream: FakeUpstream, ledger: tp.Ledger, mode: str
) -> None:
    body = {**MESSAGES, "stream": True}
    headers = {"x-fake-chunks": "200", "x-fake-delay": "0.02"}
    with running_proxy(settings_for(upstream.base_url, mode=mode), ledger) as proxy:
        with httpx.stream(
            "POST", proxy.base_url + "/v1/messages", json=body, headers=headers, timeout=60
        ) as reply:
            for seen, _ in enumerate(reply.iter_raw(), 1):
                if seen == 5:
                    break  # leave mid-stream: closing the response drops the connection
        proxy.wait_settled()
    [record] = ledger.records()
    assert record.status == "cancelled"
    assert 0 < record.output_tokens < 200  # the partial use is spent, the rest released
    assert ledger.active_reservations() == 0


def test_an_upstream_that_breaks_mid_stream_is_settled_with_what_was_used(
    upstream: FakeUpstream, ledger: tp.Ledger
) -> None:
    with running_proxy(_enforce(upstream.base_url), ledger) as proxy:
        client = anthropic.Anthropic(base_url=proxy.base_url, api_key="k", max_retries=0)
        broken = client.messages.stream(**MESSAGES, extra_headers={"x-fake-disconnect-after": "3"})
        with pytest.raises(anthropic.APIStatusError, match="upstream stream broke"), broken as events:
            "".join(events.text_stream)
        proxy.wait_settled()
    [record] = ledger.records()
    assert record.status == "error" and record.output_tokens == 3 and record.input_tokens > 0
    assert ledger.active_reservations() == 0


def _race(base: str, *, clients: int, calls: int, path: str, body: dict[str, Any]) -> list[int]:
    statuses: list[int] = []
    lock = threading.Lock()
    headers = {"x-fake-output-tokens": "1500", "x-fake-delay": "0.002", "x-tokenpilot-scope": "race/agent"}

    def client() -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            for _ in range(calls):
                with http.stream("POST", path, json={**body, "stream": True}, headers=headers) as reply:
                    reply.read()
                with lock:
                    statuses.append(reply.status_code)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return statuses


@pytest.mark.slow
def test_eight_concurrent_streaming_clients_on_one_budget_never_overspend(
    upstream: FakeUpstream,
    store_url: str,
) -> None:
    ledger = tp.open_ledger(store_url)
    limit = 20_000
    ledger.set_budget("race", tokens=limit)
    body = {**MESSAGES, "max_tokens": 2000}
    with running_proxy(_enforce(upstream.base_url), ledger) as proxy:
        statuses = _race(proxy.base_url, clients=8, calls=5, path="/v1/messages", body=body)
        proxy.wait_settled()
    assert len(statuses) == 40
    assert statuses.count(200) >= 5 and statuses.count(429) >= 1  # the race really ran into the limit
    spent = ledger.usage("race").spent
    assert spent <= limit
    assert sum(r.total_tokens for r in ledger.records(scope="race")) == spent
    assert ledger.active_reservations() == 0
    ledger.close()


def test_tokenpilot_report_by_session_groups_the_proxied_calls(
    upstream: FakeUpstream, ledger: tp.Ledger
) -> None:
    with running_proxy(_enforce(upstream.base_url), ledger) as proxy:
        for session in ("s1", "s1", "s2"):
            HTTP.post(
                proxy.base_url + "/v1/messages", json=MESSAGES, headers={"x-tokenpilot-session": session}
            )
        proxy.wait_settled()
    report = ledger.report(by="session")
    text = str(report.as_dict() if hasattr(report, "as_dict") else report)
    assert "s1" in text and "s2" in text


def _wait(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_hard_stop_ends_a_stream_that_passes_its_budget_hold_and_says_so(
    upstream: FakeUpstream, ledger: tp.Ledger
) -> None:
    # An unknown model with no max_tokens goes out as asked, holding the default 4096 output tokens.
    body = {"model": "gpt-9-preview", "messages": CHAT["messages"], "stream": True}
    with running_proxy(_enforce(upstream.base_url, hard_stop=True), ledger) as proxy:
        reply = HTTP.post(
            proxy.base_url + "/v1/chat/completions", json=body, headers={"x-fake-chunks": "5000"}
        )
        proxy.wait_settled()
    assert reply.status_code == 200
    assert "tokenpilot hard stop" in reply.text.splitlines()[-2]
    assert "[DONE]" not in reply.text
    [record] = ledger.records()
    assert record.status == "cancelled" and record.output_tokens > 4096  # what upstream made is spent
    assert ledger.active_reservations() == 0


def test_a_budget_another_process_sets_while_the_proxy_runs_without_one_refuses_the_next_call(
    upstream: FakeUpstream, ledger: tp.Ledger
) -> None:
    scope = {"x-tokenpilot-scope": "team/a"}
    with running_proxy(_enforce(upstream.base_url), ledger) as proxy:
        for _ in range(3):  # no budget encloses team/a: these hold nothing
            assert HTTP.post(proxy.base_url + "/v1/chat/completions", json=CHAT, headers=scope).is_success
        script = f"import tokenpilot as tp; tp.open_ledger({ledger.url!r}).set_budget('team', tokens=100)"
        subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
        reply = HTTP.post(proxy.base_url + "/v1/chat/completions", json=CHAT, headers=scope)
        assert reply.status_code == 429 and "'team'" in reply.json()["error"]["message"]
        _wait(lambda: proxy.proxy.accountant.pending == 0)
    records = ledger.records(scope="team")
    assert len(upstream.received) == 3 and len(records) == 3  # a refusal is an alert, not a record
    assert ledger.usage("team").spent == sum(r.input_tokens + r.output_tokens for r in records)
    assert ledger.active_reservations() == 0 and ledger.verify_counters() == []
