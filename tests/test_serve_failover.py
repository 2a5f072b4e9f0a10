"""Failover through the real proxy (`[serve] failover = true`): a 529/5xx goes to the upstream's
fallback or to the routing chain's next model before the client sees anything; off, it goes back
as it came. Every attempt is in the ledger; no reservation is left behind."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import anthropic
import openai
import pytest

import tokenpilot as tp
from fake_upstream import FakeUpstream
from serve_support import fake, ledger, running_proxy, settings_for, upstream
from tokenpilot._serve.settings import Upstream, load_settings

CHAIN = '[routing.chains]\n"claude-opus-4-6" = ["claude-sonnet-4-6"]\n"gpt-4o" = ["claude-sonnet-4-6"]\n'
OVERLOADED = {"x-fake-status": "529", "x-fake-fail-model": "claude-opus-4-6"}
PROMPT = [{"role": "user", "content": "Summarise the design document."}]


@pytest.fixture
def chain() -> None:
    Path("tokenpilot.toml").write_text(CHAIN)  # the test's own working directory (conftest)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("mode", ["observe", "enforce"])
def test_an_overloaded_model_fails_over_to_the_next_model_of_its_chain(
    upstream: FakeUpstream, ledger: tp.Ledger, chain: None, mode: str, stream: bool
) -> None:
    with running_proxy(settings_for(upstream.base_url, mode=mode, failover=True), ledger) as proxy:
        client = anthropic.Anthropic(base_url=proxy.base_url, api_key="k", max_retries=0)
        if stream:
            with client.messages.stream(
                model="claude-opus-4-6", max_tokens=300, messages=PROMPT, extra_headers=OVERLOADED
            ) as events:
                text = "".join(events.text_stream)
                answer = events.get_final_message()
        else:
            answer = client.messages.create(
                model="claude-opus-4-6", max_tokens=300, messages=PROMPT, extra_headers=OVERLOADED
            )
            text = answer.content[0].text  # type: ignore[union-attr]
        proxy.wait_settled()
    assert text and answer.model == "claude-sonnet-4-6"
    first, second = upstream.received
    assert first.json()["model"] == "claude-opus-4-6" and second.json()["model"] == "claude-sonnet-4-6"
    assert {k: v for k, v in second.json().items() if k != "model"} == {
        k: v for k, v in first.json().items() if k != "model"
    }
    records = ledger.records()
    assert len(records) == 2  # write order is not call order (a batch may go to the pool): match by model
    [failed] = [r for r in records if r.model == "claude-opus-4-6"]
    [served] = [r for r in records if r.model != "claude-opus-4-6"]
    assert (failed.model, failed.status, failed.http_status) == ("claude-opus-4-6", "rate_limited", 529)
    assert failed.input_tokens == 0 and "failed over" in (failed.error or "")
    assert (served.model, served.status, served.http_status) == ("claude-sonnet-4-6", "ok", 200)
    assert served.output_tokens == upstream.reported[-1].usage["output_tokens"]
    assert ledger.active_reservations() == 0


def test_a_failing_upstream_fails_over_to_its_fallback_with_the_same_bytes(ledger: tp.Ledger) -> None:
    with FakeUpstream(status=503) as down, FakeUpstream() as backup:
        settings = replace(
            settings_for(backup.base_url, failover=True),
            upstreams=(
                Upstream("primary", "openai", down.base_url, fallback="backup"),
                Upstream("backup", "openai", backup.base_url, models=("never-*",)),
                Upstream("anthropic", "anthropic", backup.base_url),
            ),
        )
        with running_proxy(settings, ledger) as proxy:
            client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="k", max_retries=0)
            reply = client.chat.completions.create(model="gpt-4o", messages=PROMPT)  # type: ignore[arg-type]
            proxy.wait_settled()
    assert reply.choices[0].message.content
    [sent] = down.received
    [resent] = backup.received
    assert resent.body == sent.body  # observe mode: the client's bytes, to both
    statuses = sorted((r.status, r.http_status) for r in ledger.records())
    assert statuses == [("error", 503), ("ok", 200)]


def test_failover_gives_up_after_every_stop_failed_and_forwards_the_last_error(
    ledger: tp.Ledger, chain: None
) -> None:
    with FakeUpstream(status=500) as down, FakeUpstream(status=502) as also_down:
        settings = replace(
            settings_for(down.base_url, mode="enforce", failover=True),
            upstreams=(
                Upstream("primary", "openai", down.base_url, fallback="backup"),
                Upstream("backup", "openai", also_down.base_url, models=("never-*",)),
                Upstream("anthropic", "anthropic", down.base_url),
            ),
        )
        with running_proxy(settings, ledger) as proxy:
            client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="k", max_retries=0)
            with pytest.raises(openai.InternalServerError) as failed:
                client.chat.completions.create(model="gpt-4o", messages=PROMPT)  # type: ignore[arg-type]
            proxy.wait_settled()
    # gpt-4o's chain names an Anthropic model: no cross-provider failover, the backup's 502 comes back.
    assert failed.value.status_code == 502
    assert len(down.received) == 1 and len(also_down.received) == 1
    assert sorted(r.http_status for r in ledger.records()) == [500, 502]
    assert ledger.active_reservations() == 0


def test_without_failover_an_overloaded_model_gets_its_529_as_it_came(
    upstream: FakeUpstream, ledger: tp.Ledger, chain: None
) -> None:
    with running_proxy(settings_for(upstream.base_url, mode="enforce"), ledger) as proxy:
        client = anthropic.Anthropic(base_url=proxy.base_url, api_key="k", max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as failed:
            client.messages.create(
                model="claude-opus-4-6", max_tokens=300, messages=PROMPT, extra_headers=OVERLOADED
            )
        proxy.wait_settled()
    assert failed.value.status_code == 529
    assert len(upstream.received) == 1
    [record] = ledger.records()
    assert record.status == "rate_limited" and ledger.active_reservations() == 0


def test_a_fallback_must_name_another_upstream_of_the_same_api(tmp_path: Path) -> None:
    config = tmp_path / "tokenpilot.toml"
    config.write_text(
        '[serve]\nfailover = true\n[serve.upstreams.openai]\nfallback = "claude"\n'
        '[serve.upstreams.claude]\napi = "anthropic"\n'
    )
    with pytest.raises(tp.ConfigError, match="same api"):
        load_settings(config_file=config)
    config.write_text('[serve.upstreams.openai]\nfallback = "nowhere"\n')
    with pytest.raises(tp.ConfigError, match="another"):
        load_settings(config_file=config)
    config.write_text(
        '[serve]\nfailover = true\n[serve.upstreams.openai]\nfallback = "backup"\n'
        '[serve.upstreams.backup]\napi = "openai"\nbase_url = "http://127.0.0.1:9"\nmodels = ["x-*"]\n'
    )
    settings = load_settings(config_file=config)
    assert settings.failover and settings.upstream_for("openai", "gpt-4o").fallback == "backup"
