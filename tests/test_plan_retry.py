"""next_attempt: ×1.5 up to the cap, then the model chain; attempts recorded in the ledger."""

from __future__ import annotations

import pytest

import tokenpilot as tp
from plan_support import FakeLedger, fixture, write_project_config

CHAIN = '[routing.chains]\n"gpt-4o" = ["gpt-4.1"]\n"claude-sonnet-4-5" = ["claude-sonnet-4-6"]\n'


def code_plan(model: str = "gpt-4o") -> tp.CallPlan:
    body = {"model": model, "messages": [{"role": "user", "content": "Implement the CSV exporter"}]}
    return tp.plan_call(body, task_type="code_generation", complexity="medium")


def test_complete_response_needs_no_next_attempt() -> None:
    assert tp.next_attempt(code_plan(), fixture("openai_response_stop")) is None


def test_truncated_answer_raises_max_tokens_by_half_on_the_same_model() -> None:
    plan = tp.plan_call(
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "Explain the module"}]},
        task_type="explanation",
        complexity="medium",
    )
    retry = tp.next_attempt(plan, fixture("openai_response_length"))
    assert retry is not None
    assert (retry.model, retry.max_tokens, retry.attempt) == ("gpt-4o", 3000, 2)
    assert retry.reasons[-1].choice == "retry"


def test_escalation_grows_to_the_cap_then_moves_along_the_chain() -> None:
    write_project_config(CHAIN)
    truncated = fixture("openai_response_length")
    plan = code_plan()
    assert (plan.max_tokens, plan.chain) == (12_000, ("gpt-4.1",))
    second = tp.next_attempt(plan, truncated)
    assert second is not None and (second.model, second.max_tokens) == ("gpt-4o", 16_384)  # 18,000 capped
    third = tp.next_attempt(second, truncated)
    assert third is not None and (third.model, third.max_tokens) == ("gpt-4.1", 24_576)  # 16,384 × 1.5
    assert third.chain == ()
    fourth = tp.next_attempt(third, truncated)
    assert fourth is not None and (fourth.model, fourth.max_tokens, fourth.attempt) == ("gpt-4.1", 32_768, 4)
    with pytest.raises(tp.BudgetError, match="after 4 attempts"):
        tp.next_attempt(fourth, truncated)


def test_truncated_at_the_cap_without_a_chain_is_a_budget_error() -> None:
    plan = code_plan()
    second = tp.next_attempt(plan, fixture("openai_response_length"))
    assert second is not None and second.max_tokens == 16_384
    with pytest.raises(tp.BudgetError, match="no model left in its chain"):
        tp.next_attempt(second, fixture("openai_response_length"))


def test_context_window_exceeded_moves_to_a_model_with_a_larger_window() -> None:
    write_project_config(CHAIN)
    plan = code_plan("claude-sonnet-4-5")
    retry = tp.next_attempt(plan, fixture("anthropic_response_window_exceeded"))
    assert retry is not None
    assert retry.model == "claude-sonnet-4-6"  # never the same model: its window was full
    assert retry.max_tokens == 18_000


def test_anthropic_max_tokens_stop_reason_escalates() -> None:
    plan = code_plan("claude-sonnet-4-5")
    retry = tp.next_attempt(plan, fixture("anthropic_response_max_tokens"))
    assert retry is not None and retry.max_tokens == 18_000 and retry.model == "claude-sonnet-4-5"


def test_chain_models_without_more_room_are_skipped() -> None:
    write_project_config('[routing.chains]\n"gpt-4o" = ["gpt-4o-mini", "gpt-4.1"]\n')
    plan = code_plan()
    at_cap = tp.next_attempt(plan, fixture("openai_response_length"))
    assert at_cap is not None
    moved = tp.next_attempt(at_cap, fixture("openai_response_length"))
    assert moved is not None and moved.model == "gpt-4.1"  # gpt-4o-mini's 16,384 cap is no bigger


def test_each_attempt_is_recorded_in_the_ledger() -> None:
    ledger = FakeLedger()
    plan = tp.plan_call(
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "Explain the module"}]},
        task_type="explanation",
        phase="docs",
    )
    retry = tp.next_attempt(plan, fixture("openai_response_length"), ledger=ledger, scope="acme/docs")
    assert retry is not None
    assert tp.next_attempt(retry, fixture("openai_response_stop"), ledger=ledger, scope="acme/docs") is None
    assert ledger.recorded == [
        {
            "scope": "acme/docs",
            "model": "gpt-4o",
            "input_tokens": 1200,  # prompt_tokens, cached ones included
            "output_tokens": 300,
            "cache_read_tokens": 1024,  # the response's prompt_tokens_details.cached_tokens
            "cache_write_tokens": 0,
            "max_tokens": 2000,
            "finish_reason": "length",
            "attempt": 1,
            "status": "ok",
            "error": None,
            "phase": "docs",
            "task_type": "explanation",
        },
        {
            "scope": "acme/docs",
            "model": "gpt-4o",
            "input_tokens": 19,
            "output_tokens": 10,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "max_tokens": 3000,
            "finish_reason": "stop",
            "attempt": 2,
            "status": "ok",
            "error": None,
            "phase": "docs",
            "task_type": "explanation",
        },
    ]
