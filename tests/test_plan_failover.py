"""failover: wait on short rate limits, switch models on long ones and on overload, give up on 4xx."""

from __future__ import annotations

from datetime import UTC, datetime

import tokenpilot as tp
from plan_support import FakeLedger, fixture, write_project_config

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
TIERS = '[routing.tiers]\ncheap = "gpt-4o-mini"\nstandard = "gpt-4o"\nstrong = "gpt-4.1"\n'


def plan_on(model: str) -> tp.CallPlan:
    body = {"model": model, "messages": [{"role": "user", "content": "Explain the module"}]}
    return tp.plan_call(body, model, task_type="explanation", complexity="medium")


def test_short_rate_limit_waits_what_the_openai_headers_say() -> None:
    write_project_config(TIERS)
    headers = {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1.4s"}
    decision = tp.failover(
        plan_on("gpt-4o"), status=429, headers=headers, error=fixture("openai_error_rate_limit"), now=NOW
    )
    assert decision.action == "retry" and decision.wait_seconds == 1.4
    assert decision.plan is not None and decision.plan.model == "gpt-4o" and decision.plan.attempt == 2


def test_long_rate_limit_switches_to_the_next_model_of_the_chain() -> None:
    write_project_config(TIERS)
    decision = tp.failover(
        plan_on("gpt-4o"),
        status=429,
        headers={"retry-after": "45"},
        error=fixture("anthropic_error_rate_limit"),
        now=NOW,
    )
    assert decision.action == "switch" and decision.wait_seconds == 0
    assert decision.plan is not None and decision.plan.model == "gpt-4.1"
    assert "max_wait_seconds" in decision.reason


def test_long_rate_limit_without_a_chain_waits() -> None:
    decision = tp.failover(plan_on("gpt-4o"), status=429, headers={"retry-after": "45"}, now=NOW)
    assert decision.action == "retry" and decision.wait_seconds == 45.0


def test_overload_switches_at_once() -> None:
    write_project_config(TIERS)
    decision = tp.failover(
        plan_on("gpt-4o-mini"), status=529, error=fixture("anthropic_error_overloaded"), now=NOW
    )
    assert decision.action == "switch" and decision.plan is not None and decision.plan.model == "gpt-4o"


def test_server_error_without_a_chain_backs_off_exponentially() -> None:
    first = tp.failover(plan_on("gpt-4o"), status=503, now=NOW)
    assert first.action == "retry" and first.wait_seconds == 1.0
    assert first.plan is not None
    second = tp.failover(first.plan, status=503, now=NOW)
    assert second.wait_seconds == 2.0


def test_client_errors_are_not_retried() -> None:
    for status in (400, 401, 404):
        assert tp.failover(plan_on("gpt-4o"), status=status, now=NOW).action == "give_up"


def test_exhausted_quota_does_not_wait() -> None:
    decision = tp.failover(plan_on("gpt-4o"), status=429, error=fixture("openai_error_quota"), now=NOW)
    assert decision.action == "give_up"
    write_project_config(TIERS)
    moved = tp.failover(plan_on("gpt-4o"), status=429, error=fixture("openai_error_quota"), now=NOW)
    assert moved.action == "switch"


def test_failover_skips_a_chain_model_past_its_budget_warning() -> None:
    write_project_config('[routing.chains]\n"gpt-4o" = ["gpt-4.1", "o3"]\n[routing]\nbudget_warning = 0.9\n')
    decision = tp.failover(plan_on("gpt-4o"), status=500, budget_used={"gpt-4.1": 0.95}, now=NOW)
    assert decision.action == "switch" and decision.plan is not None and decision.plan.model == "o3"


def test_failover_gives_up_after_max_attempts() -> None:
    write_project_config("[plan]\nmax_attempts = 1\n")
    assert tp.failover(plan_on("gpt-4o"), status=503, now=NOW).action == "give_up"


def test_failed_attempt_is_recorded() -> None:
    ledger = FakeLedger()
    tp.failover(
        plan_on("gpt-4o"), status=529, error=fixture("anthropic_error_overloaded"), ledger=ledger, now=NOW
    )
    (row,) = ledger.recorded
    assert row["status"] == "error" and row["error"] == "HTTP 529 overloaded_error"
    assert row["attempt"] == 1 and row["model"] == "gpt-4o" and row["output_tokens"] == 0
