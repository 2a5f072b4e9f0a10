"""compact: each policy's rules, the invariants on every output, triggers, the cost model."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tokenpilot as tp
from conversations import anthropic_body, openai_conversation
from tokenpilot._compact import Compactor, Pricing, extractive

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NO_CACHE = Pricing(1.0, 1.0, 1.0)
ANTHROPIC = Pricing(3.0, 0.3, 3.75)


def call(cid: str, command: str, name: str = "execute_bash") -> dict[str, Any]:
    return {
        "id": cid,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps({"command": command})},
    }


def agent_run(outputs: list[str], commands: list[str] | None = None) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are an agent."},
        {"role": "user", "content": "Fix the failing test in parser.py"},
    ]
    for i, output in enumerate(outputs):
        command = commands[i] if commands else f"cat file_{i}.py"
        messages.append(
            {"role": "assistant", "content": f"Step {i}.", "tool_calls": [call(f"c{i}", command)]}
        )
        messages.append({"role": "tool", "tool_call_id": f"c{i}", "name": "execute_bash", "content": output})
    return messages


def big(i: int, lines: int = 200) -> str:
    return "".join(f"line {n} of output {i}: value_{i}_{n} = compute({n})\n" for n in range(lines))


# ---------------------------------------------------------------------------------------------
# invariants, property-tested
# ---------------------------------------------------------------------------------------------


@FAST
@given(
    openai_conversation(),
    st.integers(min_value=200, max_value=20_000),
    st.sampled_from(["default", "aggressive", "mask-only", "window-only"]),
)
def test_openai_output_is_always_valid_and_under_budget(
    messages: list[dict[str, Any]], budget: int, policy: str
) -> None:
    compactor = Compactor(model="gpt-4o", budget=budget, policy=policy)
    try:
        result = compactor.run(messages)
    except tp.BudgetError:
        # only when the system prompt and task alone are over the target
        assert tp.count_messages(messages[:2], model="gpt-4o") > compactor.target
        return
    assert tp.validate(result.messages, "openai") == ()
    assert tp.count_messages(result.messages, model="gpt-4o") == result.tokens_after <= budget
    assert result.messages[:2] == messages[:2]  # system prompt and task kept


@FAST
@given(anthropic_body(), st.integers(min_value=200, max_value=20_000))
def test_anthropic_output_is_always_valid_and_under_budget(body: dict[str, Any], budget: int) -> None:
    compactor = Compactor(model="gpt-4o", budget=budget)
    try:
        result = compactor.run(body)
    except tp.BudgetError:
        head = tp.count_messages({**body, "messages": body["messages"][:1]}, model="gpt-4o")
        assert head > compactor.target
        return
    assert tp.validate(result.messages, "anthropic") == ()
    assert tp.count_messages(result.messages, model="gpt-4o") == result.tokens_after <= budget
    assert result.messages["system"] == body["system"]
    assert result.messages["messages"][0] == body["messages"][0]


def test_under_the_trigger_nothing_changes_when_masking_does_not_pay() -> None:
    messages = agent_run([big(i) for i in range(14)])
    result = tp.compact(messages, model="gpt-4o", budget=1_000_000, pricing=ANTHROPIC, horizon=0, clamp=4_000)
    assert result.messages == messages and result.actions == ()


def test_system_and_task_over_the_target_is_a_budget_error() -> None:
    messages = [{"role": "system", "content": "rule " * 3000}, {"role": "user", "content": "task"}]
    with pytest.raises(tp.BudgetError):
        tp.compact(messages, model="gpt-4o", budget=2_000)


def test_off_switch_returns_the_input() -> None:
    messages = agent_run([big(i) for i in range(14)])
    result = tp.compact(messages, model="gpt-4o", budget=5_000, enabled=False)
    assert result.messages == messages


# ---------------------------------------------------------------------------------------------
# the policies' rules
# ---------------------------------------------------------------------------------------------


def test_mask_keeps_last_m_tool_results_and_names_the_call() -> None:
    messages = agent_run([big(i) for i in range(14)])
    result = tp.compact(
        messages, model="gpt-4o", budget=1_000_000, pricing=NO_CACHE, keep_last=10, clamp=4_000
    )
    tools = [m for m in result.messages if m["role"] == "tool"]
    assert [t["content"] for t in tools[-10:]] == [big(i) for i in range(4, 14)]
    for i, masked in enumerate(tools[:4]):
        assert masked["content"].startswith("[tokenpilot: masked output of execute_bash")
        assert f"cat file_{i}.py" in masked["content"] and "200 lines" in masked["content"]


def test_mask_never_touches_small_outputs() -> None:
    messages = agent_run(["File created successfully."] * 14)
    result = tp.compact(messages, model="gpt-4o", budget=1_000_000, pricing=NO_CACHE)
    assert result.messages == messages


def test_batched_masking_keeps_the_prefix_between_compactions() -> None:
    outputs = [big(i) for i in range(40)]
    compactor = Compactor(model="gpt-4o", budget=1_000_000, pricing=ANTHROPIC, horizon=30, clamp=4_000)
    rewrites = 0
    previous: list[dict[str, Any]] = []
    for turn in range(12, 40):
        prompt = compactor.step(agent_run(outputs[:turn]))
        common = 0
        for a, b in zip(previous, prompt, strict=False):
            if a != b:
                break
            common += 1
        rewrites += common < len(previous)
        previous = prompt
    assert 0 < rewrites < 28 // 2  # compactions happen, but far from every turn


def test_dedupe_replaces_an_earlier_identical_output() -> None:
    messages = agent_run([big(1), big(2), big(1)], ["cat a.py", "cat b.py", "cat a.py"])
    result = tp.compact(
        messages, model="gpt-4o", budget=1_000_000, pricing=NO_CACHE, keep_last=10, clamp=4_000
    )
    tools = [m["content"] for m in result.messages if m["role"] == "tool"]
    assert tools[0].startswith("[tokenpilot: repeated (see later) output of execute_bash")
    assert tools[1:] == [big(2), big(1)]


def test_clamp_reduces_a_huge_output_with_trims_reducers() -> None:
    messages = agent_run([big(0, lines=3_000)])
    result = tp.compact(messages, model="gpt-4o", budget=1_000_000, clamp=1_000)
    output = result.messages[-1]["content"]
    assert tp.count_tokens(output, "gpt-4o") <= 1_000
    kept = output.split("\n[tokenpilot: elided names: ", 1)[0]  # the names of the elided part follow
    assert output.startswith("line 0 of output 0") and kept.rstrip().endswith("compute(2999)")
    assert "tokens omitted …]" in output  # trim's marker says what was elided
    names = output.split("elided names: ", 1)[1].rstrip("]\n").split(", ")
    assert names and all(f"{name} " not in kept for name in names)  # only names of elided lines
    assert result.actions[0].kind == "clamp"


def test_window_keeps_head_and_summary_and_cuts_between_pairs() -> None:
    messages = agent_run([big(i, 60) for i in range(30)])
    result = tp.compact(messages, model="gpt-4o", budget=20_000, policy="window-only")
    out = result.messages
    assert out[:2] == messages[:2]
    assert out[2]["role"] == "user" and out[2]["content"].startswith("[tokenpilot summary of")
    assert out[3]["role"] == "assistant"  # the kept part starts with a call, never an orphan result
    assert out[-1] == messages[-1]
    assert result.tokens_after <= result.target


def test_prune_drops_empty_turns_acks_and_retried_failures() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "task"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "ok"},
        {"role": "assistant", "content": "try", "tool_calls": [call("a", "pytest tests")]},
        {"role": "tool", "tool_call_id": "a", "content": "ERROR: no such option"},
        {"role": "assistant", "content": "retry", "tool_calls": [call("b", "pytest tests")]},
        {"role": "tool", "tool_call_id": "b", "content": big(0, 2_000)},
        {"role": "assistant", "content": "done"},
    ]
    result = tp.compact(messages, model="gpt-4o", budget=30_000, policy="aggressive", trigger=60)
    kinds = [a.detail for a in result.actions if a.kind == "prune"]
    assert set(kinds) == {"empty assistant turn", "bare acknowledgement", "failed attempt, retried"}
    assert tp.validate(result.messages, "openai") == ()


def test_interrupted_call_gets_a_synthetic_result_when_asked() -> None:
    messages = agent_run(["x"])
    messages.append({"role": "assistant", "content": "", "tool_calls": [call("late", "sleep 100")]})
    result = tp.compact(messages, model="gpt-4o", budget=100_000, interrupt_dangling=True)
    assert result.messages[-1]["tool_call_id"] == "late" and "interrupted" in result.messages[-1]["content"]


def test_forced_compaction_reports_its_expected_cost() -> None:
    messages = agent_run([big(i, 60) for i in range(30)])
    result = tp.compact(messages, model="claude-sonnet-4-5", budget=20_000)
    costed = [a for a in result.actions if a.cost is not None]
    assert len(costed) == 1 and costed[0].cost is not None and costed[0].cost.forced
    assert costed[0].cost.saved_per_turn > 0


def test_voluntary_masking_happens_only_when_it_pays() -> None:
    messages = agent_run([big(i) for i in range(14)])
    paid = tp.compact(messages, model="gpt-4o", budget=1_000_000, pricing=ANTHROPIC, horizon=1_000)
    assert any(a.kind == "mask" for a in paid.actions)
    cost = next(a.cost for a in paid.actions if a.cost is not None)
    assert cost.net > 0 and not cost.forced


def test_unknown_threshold_is_an_input_error() -> None:
    with pytest.raises(tp.InputError):
        tp.compact([{"role": "user", "content": "x"}], budget=100, triger=0.5)


def test_unknown_policy_is_an_input_error() -> None:
    with pytest.raises(tp.InputError):
        tp.compact([{"role": "user", "content": "x"}], budget=100, policy="magic")


# ---------------------------------------------------------------------------------------------
# validate, extractive summary
# ---------------------------------------------------------------------------------------------


def test_validate_finds_orphan_results_and_unanswered_calls() -> None:
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "", "tool_calls": [call("a", "ls")]},
        {"role": "user", "content": "what?"},
        {"role": "tool", "tool_call_id": "zzz", "content": "x"},
    ]
    codes = {p.code for p in tp.validate(messages, "openai")}
    assert codes == {"unanswered_call", "orphan_result"}


def test_validate_requires_anthropic_to_start_with_user() -> None:
    problems = tp.validate([{"role": "assistant", "content": "hi"}], "anthropic")
    assert [p.code for p in problems] == ["first_role"]


def test_extractive_summary_is_the_artifact_record_with_what_the_assistant_said() -> None:
    messages = [
        {
            "role": "assistant",
            "content": "I will reproduce the bug first. Then fix it.",
            "tool_calls": [
                call("a", "python repro.py"),
                {
                    "id": "b",
                    "type": "function",
                    "function": {
                        "name": "str_replace_editor",
                        "arguments": json.dumps({"command": "view", "path": "/w/src/core.py"}),
                    },
                },
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "a",
            "content": "Traceback...\nValueError: bad column\n[exit code 1]",
        },
        {"role": "tool", "tool_call_id": "b", "content": "def f(): ..."},
    ]
    summary = extractive(messages)
    assert "Files read:\n- /w/src/core.py" in summary
    assert "- python repro.py (exit 1)" in summary
    assert "Errors hit:\n- ValueError: bad column [python repro.py]" in summary  # what it ran hit
    assert "I will reproduce the bug first." in summary


def test_aggressive_window_keeps_at_most_the_last_four_exchanges() -> None:
    messages = agent_run([f"short output {i}" for i in range(40)])
    result = tp.compact(messages, model="gpt-4o", budget=3_000, policy="aggressive")
    kept = [m for m in result.messages[3:] if m["role"] == "assistant"]
    assert kept == [m for m in messages if m["role"] == "assistant"][-4:]
    assert result.messages[2]["content"].startswith("[tokenpilot summary")


def test_window_without_room_for_a_summary_still_keeps_what_fits() -> None:
    messages = agent_run([big(i, 30) for i in range(10)])
    result = tp.compact(messages, model="gpt-4o", budget=2_000, policy="window-only", summarizer="none")
    assert result.messages[-1] == messages[-1]
    assert result.tokens_after <= result.target


def test_a_broken_input_conversation_is_an_input_error() -> None:
    with pytest.raises(tp.InputError, match="has no tool call"):
        tp.compact([{"role": "tool", "tool_call_id": "x", "content": "hi"}], model="gpt-4o", budget=1_000)


def test_an_agent_feeding_back_its_compacted_history_stays_valid_and_under_budget() -> None:
    outputs = [big(i, 40) for i in range(60)]
    history: list[dict[str, Any]] = agent_run([])
    for i, output in enumerate(outputs):
        history += agent_run([output])[2:]  # the agent appends its next call and its result
        history[-2]["tool_calls"][0]["id"] = history[-1]["tool_call_id"] = f"t{i}"
        result = tp.compact(history, model="gpt-4o", budget=12_000)
        assert tp.validate(result.messages, "openai") == ()
        assert result.tokens_after <= 12_000
        history = result.messages
    summaries = [m for m in history if str(m.get("content", "")).startswith("[tokenpilot summary")]
    assert len(summaries) == 1 and history[:2] == agent_run([])


def test_invalid_config_value_is_a_config_error(isolated_config: Any) -> None:
    folder = isolated_config / "tokenpilot"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text('[compact]\ntrigger = "soon"\n', encoding="utf-8")
    with pytest.raises(tp.ConfigError, match="trigger"):
        tp.compact([{"role": "user", "content": "x"}], budget=100)


def _anthropic_run_with_screenshots(n: int, text: str) -> dict[str, Any]:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Fix the layout bug"}]
    for i in range(n):
        messages.append(
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": f"s{i}", "name": "screenshot", "input": {}}],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": f"s{i}",
                        "content": [{"type": "text", "text": text}, image],
                    }
                ],
            }
        )
    return {"system": "agent", "messages": messages}


def test_masked_anthropic_result_counts_its_images_in_the_marker() -> None:
    body = _anthropic_run_with_screenshots(12, big(0))
    result = tp.compact(body, model="gpt-4o", budget=1_000_000, pricing=NO_CACHE)
    first = result.messages["messages"][2]["content"][0]["content"]
    assert first == [{"type": "text", "text": first[0]["text"]}]
    assert "screenshot()" in first[0]["text"] and "1 image" in first[0]["text"]
    assert tp.validate(result.messages, "anthropic") == ()


def test_clamp_keeps_the_images_of_a_result() -> None:
    body = _anthropic_run_with_screenshots(1, big(0, lines=3_000))
    result = tp.compact(body, model="gpt-4o", budget=1_000_000, clamp=500)
    content = result.messages["messages"][2]["content"][0]["content"]
    assert "tokens omitted …]" in content[0]["text"] and content[1]["type"] == "image"


def test_interrupted_result_is_not_carried_to_the_next_turn() -> None:
    compactor = Compactor(model="gpt-4o", budget=100_000, interrupt_dangling=True)
    history = agent_run(["x"])
    history.append({"role": "assistant", "content": "", "tool_calls": [call("late", "sleep 1")]})
    assert "interrupted" in compactor.step(history)[-1]["content"]
    history.append({"role": "tool", "tool_call_id": "late", "content": "done"})
    assert compactor.step(history) == history


def test_cost_effect_follows_the_documented_formula() -> None:
    read, write = 0.1, 1.25
    messages = agent_run([big(i) for i in range(14)])
    result = tp.compact(
        messages,
        model="gpt-4o",
        budget=1_000_000,
        pricing=Pricing(1.0, read, write),
        horizon=500,
        clamp=4_000,
    )
    cost = result.actions[0].cost
    assert cost is not None and not cost.forced
    out = result.messages
    last_assistant = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    cached = tp.count_messages(messages[:last_assistant], model="gpt-4o")  # sent last turn
    first_changed = next(i for i, (a, b) in enumerate(zip(messages, out, strict=False)) if a != b)
    kept = min(cached, tp.count_messages(out[:first_changed], model="gpt-4o"))
    before, after = result.tokens_before, result.tokens_after

    def bill(total: int, prefix: int) -> float:
        return prefix * read + (total - prefix) * write

    assert cost.extra_now == pytest.approx(bill(after, kept) - bill(before, cached))
    assert cost.saved_per_turn == pytest.approx((before - after) * read)
    assert cost.net == pytest.approx(cost.saved_per_turn * 500 - cost.extra_now)


def test_estimated_counts_are_labelled_and_kept_under_the_safe_budget() -> None:
    messages = agent_run([big(i, 60) for i in range(30)])
    result = tp.compact(messages, model="claude-sonnet-4-5", budget=20_000)
    assert result.exact is False and result.as_dict()["exact"] is False
    safe = tp.tokenizer_for("claude-sonnet-4-5").safe_budget(20_000)
    assert (
        tp.count_messages(result.messages, model="claude-sonnet-4-5") == result.tokens_after <= safe < 20_000
    )


@FAST
@given(
    openai_conversation(images=False),
    st.integers(min_value=1_500, max_value=20_000),
    st.sampled_from([NO_CACHE, ANTHROPIC]),
)
def test_compactor_turn_after_turn_is_always_valid_and_under_budget(
    messages: list[dict[str, Any]], budget: int, pricing: Pricing
) -> None:
    compactor = Compactor(model="gpt-4o", budget=budget, pricing=pricing)
    for t, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        try:
            prompt = compactor.step(messages[:t])
        except tp.BudgetError:
            assert tp.count_messages(messages[:2], model="gpt-4o") > compactor.target
            return
        assert tp.validate(prompt, "openai") == ()
        assert tp.count_messages(prompt, model="gpt-4o") <= budget
        assert prompt[:2] == messages[:2]


def test_a_conversation_far_under_its_budget_with_no_known_price_is_not_rewritten() -> None:
    messages = agent_run([big(i, lines=1_000) for i in range(12)])
    result = tp.compact(messages, 1_000_000, model="some-unpriced-model")
    assert result.actions == () and result.messages == messages


def test_compact_takes_the_budget_second_and_reports_like_the_fit_family() -> None:
    messages = [{"role": "user", "content": "fix the bug"}]
    result = tp.compact(messages, 1_000, model="gpt-4o")
    assert result.tokens == result.tokens_after == tp.count_messages(messages, model="gpt-4o")
    assert (result.budget, result.tokenizer, result.exact) == (1_000, "o200k_base", True)
    assert result.report() == result.as_dict() and result.report()["tokens"] == result.tokens
    assert tp.compact(messages, budget=1_000, model="gpt-4o") == result  # the old keyword still works
