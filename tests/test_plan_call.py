"""plan_call: max_tokens from the table or learned, caps, compaction needed, model choice, config."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tokenpilot as tp
from plan_support import FakeLedger, Record, fixture, write_project_config
from tokenpilot._plan._max_tokens import percentile


def user(text: str, model: str = "gpt-4o") -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def test_explanation_on_gpt4o_gets_the_table_value() -> None:
    plan = tp.plan_call(fixture("openai_request_plain"))
    assert (plan.task_type, plan.complexity, plan.max_tokens, plan.max_tokens_source) == (
        "explanation",
        "medium",
        2000,
        "table",
    )
    assert plan.input_tokens == tp.count_messages(fixture("openai_request_plain"))
    assert plan.headroom == 128_000 - plan.input_tokens - 2000


def test_every_choice_has_a_reason() -> None:
    plan = tp.plan_call(fixture("openai_request_plain"))
    assert {r.choice for r in plan.reasons} == {
        "task_type",
        "complexity",
        "model",
        "output_mode",
        "prompt_tier",
        "max_tokens",
    }
    assert "replaces the request's max_tokens 256" in next(
        r.why for r in plan.reasons if r.choice == "max_tokens"
    )


def test_tool_call_table_defaults_by_complexity() -> None:
    body = fixture("anthropic_request_tool_choice_any")
    assert tp.plan_call(body, complexity="low").max_tokens == 300
    assert tp.plan_call(body, complexity="medium").max_tokens == 1000


def test_max_tokens_capped_by_the_models_max_output() -> None:
    plan = tp.plan_call(
        user("Rewrite the parser", model="gpt-4"), task_type="code_generation", complexity="high"
    )
    assert plan.max_tokens == 4096  # gpt-4's max output, under the table's 16,000
    assert "capped from 16,000" in next(r.why for r in plan.reasons if r.choice == "max_tokens")


def test_max_tokens_capped_by_the_room_left_in_the_window() -> None:
    text = "word " * 5000
    body = user(text, model="gpt-4")
    plan = tp.plan_call(body, task_type="code_generation", complexity="low")
    room = 8192 - tp.count_messages(body) - 256
    assert 1024 <= room < 4096
    assert plan.max_tokens == room
    assert plan.fits


def test_input_leaving_less_than_the_minimum_output_says_how_much_to_compact() -> None:
    body = user("word " * 7600, model="gpt-4")
    plan = tp.plan_call(body, task_type="explanation")
    room = 8192 - tp.count_messages(body) - 256
    assert 0 < room < 1024
    assert not plan.fits
    assert plan.min_output_shortfall == 1024 - room
    assert plan.compaction_needed == 2000 - room  # for the table's full 2,000-token answer
    why = next(r.why for r in plan.reasons if r.choice == "max_tokens")
    assert f"compaction must remove at least {1024 - room:,} tokens" in why


def test_estimated_tokenizer_reduces_the_window_by_its_margin() -> None:
    body = user("word " * 100, model="claude-sonnet-4-5")
    plan = tp.plan_call(body, task_type="code_generation", complexity="high")
    assert not plan.input_exact
    # room = floor(200000 / 1.05) - input - 256, far above 16,000: the table value stands.
    assert plan.max_tokens == 16_000
    assert plan.output_cap == min(64_000, math.floor(200_000 / 1.05) - plan.input_tokens - 256)


def test_learned_max_tokens_is_p90_times_margin_of_similar_calls() -> None:
    ledger = FakeLedger(
        [
            Record(output_tokens=100 * i, phase="edit", model="gpt-4o", task_type="code_generation")
            for i in range(1, 21)
        ]
    )
    plan = tp.plan_call(
        user("Implement the parser"), phase="edit", task_type="code_generation", ledger=ledger
    )
    # outputs 100..2000: nearest-rank p90 of 20 values is the 18th, 1,800; × 1.2 = 2,160.
    assert plan.max_tokens == 2160
    assert plan.max_tokens_source == "learned"
    assert "learned: p90 of 20 past calls with the same phase, task type and model" in plan.reasons[-1].why


def test_too_few_similar_calls_fall_back_to_the_table_and_say_so() -> None:
    ledger = FakeLedger(
        [Record(output_tokens=50, phase="edit", model="gpt-4o", task_type="code_generation")] * 19
    )
    plan = tp.plan_call(
        user("Implement the parser"), phase="edit", task_type="code_generation", ledger=ledger
    )
    assert plan.max_tokens == 12_000
    assert plan.max_tokens_source == "table"
    assert "fewer than 20 similar past calls" in plan.reasons[-1].why


def test_learning_widens_to_other_models_of_the_same_phase_and_task_type() -> None:
    ledger = FakeLedger(
        [Record(output_tokens=500, phase="edit", model="claude-sonnet-4-5", task_type="code_generation")] * 25
    )
    plan = tp.plan_call(
        user("Implement the parser"), phase="edit", task_type="code_generation", ledger=ledger
    )
    assert plan.max_tokens == 600
    assert "same phase and task type" in plan.reasons[-1].why
    assert ledger.queries[0] == {
        "phase": "edit",
        "model": "gpt-4o",
        "task_type": "code_generation",
        "limit": 500,
    }


def test_learning_does_not_trust_a_sample_full_of_truncated_calls() -> None:
    rows = [Record(output_tokens=100, model="gpt-4o", task_type="tool_call")] * 17
    rows += [
        Record(
            output_tokens=300, max_tokens=300, finish_reason="length", model="gpt-4o", task_type="tool_call"
        )
    ] * 3
    plan = tp.plan_call(user("Run it"), task_type="tool_call", complexity="medium", ledger=FakeLedger(rows))
    assert plan.max_tokens == 1000  # the table's, not p90 (300) × 1.2 = 360
    assert "truncated" in plan.reasons[-1].why


def test_config_table_overrides_defaults(tmp_path: object) -> None:
    write_project_config(
        "[plan.max_tokens]\ntool_call = 256\ncode_generation = { low = 2000, high = 20000 }\n"
    )
    body = fixture("anthropic_request_tool_choice_any")
    assert tp.plan_call(body, complexity="high").max_tokens == 256
    assert (
        tp.plan_call(user("Implement it"), task_type="code_generation", complexity="low").max_tokens == 2000
    )
    # medium keeps its default
    assert (
        tp.plan_call(user("Implement it"), task_type="code_generation", complexity="medium").max_tokens
        == 12_000
    )


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[plan]\nsafety_margin = -1\n", "plan.safety_margin"),
        ("[plan]\nretry_factor = 1\n", "plan.retry_factor"),
        ("[plan]\nmax_tokenz = 1\n", "plan.max_tokenz"),
        ("[plan.max_tokens]\nchitchat = 10\n", "plan.max_tokens.chitchat"),
        ("[plan.max_tokens]\ntool_call = { huge = 10 }\n", "plan.max_tokens.tool_call.huge"),
        ("[plan.max_tokens]\ntool_call = 'many'\n", "plan.max_tokens.tool_call"),
        ("[[plan.prompt_sections]]\nname = 'x'\n", "plan.prompt_sections[0]"),
        (
            "[[plan.prompt_sections]]\nname = 'x'\ntext = 'y'\nwhen = { sunny = true }\n",
            "plan.prompt_sections[0].when.sunny",
        ),
        ("[routing.tiers]\ncheap = 3\n", "routing.tiers.cheap"),
        ("[routing]\nbudget_warning = 1.5\n", "routing.budget_warning"),
        ("[routing.rules]\nreview = 'premium'\n", "routing.rules.review.low"),
        ("[routing.chains]\ngpt-4o = 'gpt-4.1'\n", "routing.chains.gpt-4o"),
    ],
)
def test_bad_config_names_the_file_and_key(toml: str, key: str) -> None:
    path = write_project_config(toml)
    with pytest.raises(tp.ConfigError) as info:
        tp.plan_call("hello")
    assert str(path) in str(info.value)
    assert repr(key) in str(info.value)


def test_unknown_task_type_or_complexity_is_an_input_error() -> None:
    with pytest.raises(tp.InputError, match="unknown task type"):
        tp.plan_call("hi", task_type="chitchat")
    with pytest.raises(tp.InputError, match="unknown complexity"):
        tp.plan_call("hi", complexity="extreme")


def test_request_without_messages_is_an_input_error() -> None:
    with pytest.raises(tp.InputError, match="'messages'"):
        tp.plan_call({"model": "gpt-4o", "prompt": "hi"})


def test_model_choice_order_explicit_then_routing_then_request() -> None:
    body = fixture("openai_request_plain")
    assert tp.plan_call(body).model == "gpt-4o"  # no routing configured: the request's model
    write_project_config('[routing.tiers]\ncheap = "gpt-4o-mini"\nstandard = "gpt-4.1"\nstrong = "o3"\n')
    assert tp.plan_call(body, complexity="low").model == "gpt-4o-mini"  # explanation/low -> cheap
    assert tp.plan_call(body, complexity="medium").model == "gpt-4.1"  # explanation/medium -> standard
    assert tp.plan_call(body, "gpt-4o", complexity="low").model == "gpt-4o"  # explicit wins


def test_routing_skips_a_model_past_its_budget_warning() -> None:
    write_project_config('[routing.tiers]\ncheap = "gpt-4o-mini"\nstandard = "gpt-4o"\nstrong = "gpt-4.1"\n')
    body = fixture("anthropic_request_tool_choice_any")
    plan = tp.plan_call(body, complexity="low", budget_used={"gpt-4o-mini": 0.85})
    assert plan.model == "gpt-4o"
    assert "skipped gpt-4o-mini" in next(r.why for r in plan.reasons if r.choice == "model")
    assert tp.plan_call(body, complexity="low", budget_used={"gpt-4o-mini": 0.5}).model == "gpt-4o-mini"


def test_to_request_sets_model_and_max_tokens_on_a_copy() -> None:
    body = fixture("openai_request_plain")
    plan = tp.plan_call(body)
    sent = plan.to_request()
    assert sent["max_completion_tokens"] == plan.max_tokens
    assert "max_tokens" not in sent
    assert body["max_completion_tokens"] == 256  # the caller's body is untouched


def test_plan_is_deterministic() -> None:
    body = fixture("anthropic_request_review")
    assert tp.plan_call(body).as_dict() == tp.plan_call(body).as_dict()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=200_000), min_size=1, max_size=60), st.floats(1, 100))
def test_percentile_is_a_member_with_at_least_p_percent_at_or_below(values: list[int], p: float) -> None:
    result = percentile(values, p)
    assert result in values
    assert sum(v <= result for v in values) >= p / 100 * len(values)
    assert sum(v < result for v in values) < p / 100 * len(values)


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=9000), st.sampled_from(["gpt-4", "gpt-4o", "gpt-3.5-turbo"]))
def test_planned_call_never_exceeds_the_window_or_the_models_max_output(words: int, model: str) -> None:
    body = user("word " * words, model=model)
    plan = tp.plan_call(body, task_type="code_generation", complexity="high")
    info = tp.get_model(model)
    assert plan.max_tokens <= (info.max_output_tokens or plan.max_tokens)
    assert plan.max_tokens >= 0
    if plan.fits:
        assert plan.input_tokens + plan.max_tokens + 256 <= info.context_window


def test_request_model_past_its_budget_warning_moves_along_its_chain() -> None:
    write_project_config('[routing.chains]\n"gpt-4o" = ["gpt-4.1"]\n')
    body = fixture("openai_request_plain")
    assert tp.plan_call(body, budget_used={"gpt-4o": 0.95}).model == "gpt-4.1"
    assert tp.plan_call(body, budget_used={"gpt-4o": 0.5}).model == "gpt-4o"
    assert tp.plan_call(body, "gpt-4o", budget_used={"gpt-4o": 0.95}).model == "gpt-4o"  # explicit is kept
