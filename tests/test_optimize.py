"""Optimize mode (`tokenpilot._serve.optimize`): what the proxy changes before a request goes upstream."""

from __future__ import annotations

import copy
import json
import logging
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import tokenpilot as tp
from conversations import agent_turns
from tokenpilot._serve.optimize import ContextOverflowError, Optimizer, OptimizeSettings
from tokenpilot._serve.sessions import SessionStore, conversation_key

SMALL = "tp-test-small"  # a model with a 6,000-token window, o200k_base, priced without a cache


@pytest.fixture(autouse=True)
def small_model(monkeypatch: pytest.MonkeyPatch) -> None:
    for field, value in (
        ("LIMIT", "6000"),
        ("TOKENIZER", "o200k_base"),
        ("INPUT_PRICE", "1.0"),
        ("CACHE_READ_PRICE", "1.0"),
        ("CACHE_WRITE_PRICE", "1.0"),
    ):
        monkeypatch.setenv(f"TOKENPILOT_MODEL_{field}_TP_TEST_SMALL", value)


def optimizer(**values: Any) -> Optimizer:
    return Optimizer(OptimizeSettings(**values))


def _check_run(requests: list[dict[str, Any]], api: str, provider: str) -> None:
    opt = optimizer(cache_layout=False)
    previous: list[Any] | None = None
    window = tp.get_model(SMALL).context_window
    for body in requests:
        out = opt.rewrite(api, copy.deepcopy(body), model=SMALL, session_key="run", headers={})
        assert tp.validate(out.body, provider) == ()
        assert tp.count_messages(out.body, model=SMALL) <= window
        sent = out.body["messages"]
        assert json.dumps(sent).count("Fix the bug in parser.py") >= 1  # the task is kept
        if provider == "openai":
            assert sent[0] == body["messages"][0]  # the system prompt is kept
        else:
            assert out.body["system"] == body["system"]
        compacted = any(a.startswith("compact_") or a in ("mask", "dedupe") for a in out.actions)
        if previous is not None and not compacted:
            assert sent[: len(previous)] == previous  # no compaction: the prefix is unchanged
        previous = sent


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agent_turns("openai"))
def test_openai_rewrites_are_valid_fit_keep_system_and_task_and_keep_the_prefix(requests: list[Any]) -> None:
    _check_run(requests, "openai_chat", "openai")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agent_turns("anthropic"))
def test_anthropic_rewrites_are_valid_fit_keep_system_and_task_and_keep_the_prefix(
    requests: list[Any],
) -> None:
    _check_run(requests, "anthropic_messages", "anthropic")


def _long_output_run() -> dict[str, Any]:
    output = "".join(f"src/pkg/module_{i}.py:{i}: warning: unused name value_{i}\n" for i in range(3_000))
    call = {"id": "c0", "type": "function", "function": {"name": "bash", "arguments": '{"command": "make"}'}}
    return {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "build it"},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c0", "content": output},
        ],
    }


def test_a_long_tool_output_is_trimmed_and_its_spill_handle_returns_the_original_bytes() -> None:
    body = _long_output_run()
    original = body["messages"][3]["content"]
    out = optimizer().rewrite(
        "openai_chat", copy.deepcopy(body), model="gpt-4o", session_key=None, headers={}
    )
    trimmed = out.body["messages"][3]["content"]
    assert "clamp" in out.actions and tp.count_tokens(trimmed) <= 1_500
    marker = trimmed.rsplit("tokenpilot spill show ", 1)[1]
    handle = marker.split("`", 1)[0]
    assert f"{tp.count_tokens(original):,} tokens" in trimmed  # the marker gives the original size
    shown = subprocess.run([sys.executable, "-m", "tokenpilot", "spill", "show", handle], capture_output=True)
    assert shown.returncode == 0 and shown.stdout == original.encode()


def test_spill_show_of_an_unknown_handle_is_one_line_and_non_zero() -> None:
    for handle, said in (("0" * 32, "no spilled output"), ("../etc/passwd", "not a spill handle")):
        shown = subprocess.run(
            [sys.executable, "-m", "tokenpilot", "spill", "show", handle], capture_output=True, text=True
        )
        assert shown.returncode != 0 and said in shown.stderr and len(shown.stderr.splitlines()) == 1


def _anthropic_body(cache_control: bool) -> dict[str, Any]:
    task: dict[str, Any] = {"type": "text", "text": "Fix the bug"}
    if cache_control:
        task["cache_control"] = {"type": "ephemeral"}
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": "You are an agent.",
        "messages": [
            {"role": "user", "content": [task]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "opaque-signature"},
                    {"type": "tool_use", "id": "t1", "name": "bash", "input": {"command": "ls"}},
                ],
                "x_unknown_field": {"kept": True},
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "a.py"}]},
        ],
    }


def test_an_anthropic_conversation_with_its_own_cache_control_keeps_it_and_gets_none_added() -> None:
    body = _anthropic_body(cache_control=True)
    out = optimizer().rewrite(
        "anthropic_messages", copy.deepcopy(body), model="claude-sonnet-4-5", session_key=None, headers={}
    )
    assert out.body == body and out.actions == ()


def test_an_anthropic_conversation_without_cache_control_gets_breakpoints_and_keeps_opaque_parts() -> None:
    body = _anthropic_body(cache_control=False)
    out = optimizer().rewrite(
        "anthropic_messages", copy.deepcopy(body), model="claude-sonnet-4-5", session_key=None, headers={}
    )
    added = [a for a in out.actions if a.startswith("cache_breakpoints:")]
    assert added and 1 <= int(added[0].split(":")[1]) <= 4
    assert json.dumps(out.body).count("cache_control") == int(added[0].split(":")[1])
    assert out.body["messages"][1] == body["messages"][1]  # thinking + unknown field untouched
    assert tp.validate(out.body, "anthropic") == ()


def test_a_request_whose_head_does_not_fit_the_window_says_how_many_tokens_must_go() -> None:
    body = {
        "model": SMALL,
        "messages": [{"role": "system", "content": "word " * 9_000}, {"role": "user", "content": "x"}],
    }
    with pytest.raises(ContextOverflowError) as raised:
        optimizer().rewrite("openai_chat", body, model=SMALL, session_key=None, headers={})
    assert raised.value.must_remove >= 9_000 - 6_000
    assert f"{raised.value.must_remove:,}" in str(raised.value)


def test_a_conversation_that_cannot_shrink_below_the_trigger_stops_compacting_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The task alone is above the target: every call reaches the trigger and the compaction fails.
    opt = optimizer(max_forced=3)
    history: list[dict[str, Any]] = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "task " * 5_000},
    ]
    actions = []
    with caplog.at_level(logging.WARNING, logger="tokenpilot._serve.optimize"):
        for i in range(6):
            history.append({"role": "assistant", "content": f"step {i}"})
            history.append({"role": "user", "content": "go on"})
            out = opt.rewrite(
                "openai_chat",
                {"model": SMALL, "messages": copy.deepcopy(history)},
                model=SMALL,
                session_key="loop",
                headers={},
            )
            actions.append(out.actions)
    assert actions[:3] == [("compaction_failed",)] * 3
    assert all(a == () for a in actions[3:])  # given up: forwarded as is
    assert any("stopped compacting" in r.getMessage() for r in caplog.records)


def test_the_same_request_twice_is_not_compacted_twice() -> None:
    body = _long_output_run()
    opt = optimizer()
    first = opt.rewrite("openai_chat", copy.deepcopy(body), model="gpt-4o", session_key="s", headers={})
    again = opt.rewrite("openai_chat", copy.deepcopy(body), model="gpt-4o", session_key="s", headers={})
    assert again is first


def test_responses_items_pass_untouched_except_long_tool_outputs() -> None:
    long = "".join(f"line {i} of a long log with name_{i}\n" for i in range(4_000))
    items = [
        {"role": "user", "content": "do it"},
        {"type": "reasoning", "id": "rs_1", "encrypted_content": "gAAAA-opaque", "summary": []},
        {"type": "function_call", "call_id": "f1", "name": "shell", "arguments": '{"command": "make"}'},
        {"type": "function_call_output", "call_id": "f1", "output": long},
        {"type": "compaction", "id": "cmp_1", "encrypted_content": "opaque"},
    ]
    body = {"model": "gpt-4o", "input": copy.deepcopy(items), "x_field": 1}
    out = optimizer().rewrite("openai_responses", body, model="gpt-4o", session_key=None, headers={})
    assert out.actions == ("clamp",) and out.body["x_field"] == 1
    sent = out.body["input"]
    assert [sent[i] for i in (0, 1, 2, 4)] == [items[i] for i in (0, 1, 2, 4)]
    assert tp.count_tokens(sent[3]["output"]) <= 1_500 < tp.count_tokens(long)


def test_conversations_are_keyed_by_session_header_else_by_system_and_task() -> None:
    a = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "t1"}]}
    b = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "t2"}]}
    assert conversation_key("openai_chat", a) != conversation_key("openai_chat", b)
    assert conversation_key("openai_chat", a, "x") == conversation_key("openai_chat", b, "x")


def test_the_session_store_is_bounded_in_number_and_expires_idle_entries() -> None:
    now = [0.0]
    store: SessionStore[list[int]] = SessionStore(max_sessions=2, idle_seconds=10, clock=lambda: now[0])
    for key in ("a", "b", "c"):
        with store.use(key, list) as (_, resize):
            resize(1)
    assert len(store) == 2 and store.get("a") is None
    now[0] = 100.0
    with store.use("d", list):
        pass
    assert len(store) == 1 and store.get("b") is None


def test_the_session_store_is_bounded_in_memory() -> None:
    store: SessionStore[list[int]] = SessionStore(max_bytes=100)
    for key in ("a", "b", "c"):
        with store.use(key, list) as (_, resize):
            resize(60)
    assert len(store) == 1 and store.get("c") == []


def test_outputs_of_a_model_with_no_known_price_are_still_trimmed_but_nothing_else_changes() -> None:
    body = _long_output_run()
    body["model"] = "my-local-model"
    out = optimizer().rewrite(
        "openai_chat", copy.deepcopy(body), model="my-local-model", session_key=None, headers={}
    )
    assert out.actions == ("clamp",)
    assert out.body["messages"][:3] == body["messages"][:3]
