"""Budgets and reservations, the same specification on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import tokenpilot as tp
from ledger_support import store_url  # noqa: F401  (fixture)
from tokenpilot import BudgetError, BudgetExceeded, InputError


class Clock:
    """A settable clock so periods and TTLs are tested without sleeping."""

    def __init__(self, now: float = 1_780_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def acct(store_url: str, clock: Clock) -> Iterator[tp.Ledger]:  # noqa: F811
    ledger = tp.open_ledger(store_url, clock=clock)
    yield ledger
    ledger.close()


def test_reservation_holds_input_plus_max_tokens_until_settled(acct: tp.Ledger) -> None:
    acct.set_budget("acme/fileorg", tokens=2_000_000, period="daily")
    with acct.reserve(
        "acme/fileorg/phase-2/builder", model="gpt-4o", input_tokens=12_000, max_output_tokens=8_000
    ) as r:
        held = acct.usage("acme/fileorg")
        assert (held.spent, held.reserved, held.remaining) == (0, 20_000, 1_980_000)
        r.settle(input_tokens=11_870, output_tokens=6_120, cache_read_tokens=8_000, finish_reason="stop")
    after = acct.usage("acme/fileorg")
    assert (after.spent, after.reserved, after.remaining) == (17_990, 0, 2_000_000 - 17_990)
    assert after.calls == 1 and after.active_reservations == 0


def test_reserve_checks_every_enclosing_budget(acct: tp.Ledger) -> None:
    acct.set_budget("acme", tokens=1_000_000)
    acct.set_budget("acme/fileorg/phase-2", tokens=15_000)
    with pytest.raises(BudgetExceeded) as refused:
        acct.reserve(
            "acme/fileorg/phase-2/builder", model="gpt-4o", input_tokens=10_000, max_output_tokens=8_000
        )
    assert refused.value.scope == "acme/fileorg/phase-2"
    assert (refused.value.limit, refused.value.spent, refused.value.reserved) == (15_000, 0, 0)
    assert acct.usage("acme").reserved == 0  # nothing held on the outer budget either


def test_budget_exceeded_names_limit_spent_and_reserved(acct: tp.Ledger) -> None:
    acct.set_budget("team", tokens=1_000)
    acct.record_call("team/a", model="gpt-4o", input_tokens=300, output_tokens=100)
    held = acct.reserve("team/b", model="gpt-4o", input_tokens=200, max_output_tokens=200)
    with pytest.raises(BudgetExceeded) as refused:
        acct.reserve("team/c", model="gpt-4o", input_tokens=101, max_output_tokens=100)
    error = refused.value
    assert (error.scope, error.limit, error.spent, error.reserved, error.requested) == (
        "team",
        1_000,
        400,
        400,
        201,
    )
    assert "team" in str(error) and "1,000" in str(error)
    held.release()


def test_sibling_scopes_do_not_share_a_budget(acct: tp.Ledger) -> None:
    acct.set_budget("acme", tokens=100)
    acct.record_call("acme-2/x", model="gpt-4o", input_tokens=5_000)
    assert acct.usage("acme").spent == 0
    acct.reserve("acme/x", model="gpt-4o", input_tokens=50, max_output_tokens=50).release()


def test_exception_in_block_releases_and_records_failed_call(acct: tp.Ledger) -> None:
    acct.set_budget("acme", tokens=100)
    with (
        pytest.raises(RuntimeError),
        acct.reserve("acme/a", model="gpt-4o", input_tokens=60, max_output_tokens=40),
    ):
        raise RuntimeError("provider timed out")
    assert acct.usage("acme").reserved == 0
    (record,) = acct.records()
    assert record.status == "error" and "provider timed out" in (record.error or "")
    assert record.total_tokens == 0


def test_http_429_is_recorded_as_rate_limited_with_an_alert(acct: tp.Ledger) -> None:
    class RateLimitError(Exception):
        status_code = 429

    with (
        pytest.raises(RateLimitError),
        acct.reserve("acme/a", model="gpt-4o", input_tokens=1, max_output_tokens=1),
    ):
        raise RateLimitError("slow down")
    assert acct.records()[0].status == "rate_limited"
    assert [a.kind for a in acct.alerts()] == ["rate_limited"]


def test_leaving_block_without_settle_releases(acct: tp.Ledger) -> None:
    with acct.reserve("acme/a", model="gpt-4o", input_tokens=10, max_output_tokens=10):
        pass
    assert acct.records()[0].status == "released"
    assert acct.active_reservations() == 0


def test_settle_twice_is_refused(acct: tp.Ledger) -> None:
    r = acct.reserve("acme/a", model="gpt-4o", input_tokens=10, max_output_tokens=10)
    r.settle(output_tokens=3)
    with pytest.raises(InputError, match="already"):
        r.settle(output_tokens=3)
    assert len(acct.records()) == 1


def test_cost_uses_model_price_and_unknown_price_is_none_not_zero(acct: tp.Ledger) -> None:
    known = acct.record_call("a", model="gpt-4o", input_tokens=1_000_000, output_tokens=0)
    model = tp.get_model("gpt-4o")
    assert known.cost_usd == pytest.approx(model.input_per_mtok)
    unknown = acct.record_call("a", model="in-house-llm-7b", input_tokens=1_000, output_tokens=10)
    assert unknown.cost_usd is None and not unknown.price_known
    assert [a.kind for a in acct.alerts()] == ["unknown_price"]
    assert acct.usage("a").unknown_cost_calls == 1


def test_cached_input_is_billed_at_the_cache_price(acct: tp.Ledger) -> None:
    model = tp.get_model("gpt-4o")
    assert model.cache_read_per_mtok is not None and model.input_per_mtok is not None
    record = acct.record_call("a", model="gpt-4o", input_tokens=1_000_000, cache_read_tokens=1_000_000)
    assert record.cost_usd == pytest.approx(model.cache_read_per_mtok)


def test_usd_budget_refuses_model_without_price(acct: tp.Ledger) -> None:
    acct.set_budget("acme", usd=10.0)
    with pytest.raises(BudgetError, match="price"):
        acct.reserve("acme/a", model="in-house-llm-7b", input_tokens=10, max_output_tokens=10)
    acct.reserve("acme/a", model="gpt-4o", input_tokens=10, max_output_tokens=10).release()


def test_usd_budget_holds_the_cost_of_max_tokens(acct: tp.Ledger) -> None:
    acct.set_budget("acme", usd=0.05)
    model = tp.get_model("gpt-4o")
    assert model.output_per_mtok is not None
    # 5,000 output tokens at the output price is the whole budget.
    tokens = int(0.05 / model.output_per_mtok * 1_000_000)
    with pytest.raises(BudgetExceeded) as refused:
        acct.reserve("acme/a", model="gpt-4o", input_tokens=1_000, max_output_tokens=tokens)
    assert refused.value.unit == "usd"


def test_daily_period_starts_afresh_the_next_day(acct: tp.Ledger, clock: Clock) -> None:
    acct.set_budget("acme", tokens=100, period="daily")
    acct.record_call("acme/a", model="gpt-4o", input_tokens=100)
    with pytest.raises(BudgetExceeded):
        acct.reserve("acme/a", model="gpt-4o", input_tokens=1, max_output_tokens=0)
    clock.now += 86_400
    usage = acct.usage("acme")
    assert usage.spent == 0 and usage.period_start is not None and usage.period_start <= clock.now
    acct.reserve("acme/a", model="gpt-4o", input_tokens=100, max_output_tokens=0).release()


def test_capacity_warning_fires_once_per_period(acct: tp.Ledger) -> None:
    acct.set_budget("acme", tokens=1_000, period="daily", warn_at=0.5)
    received: list[tp.Alert] = []
    acct.on_alert(received.append)
    acct.record_call("acme/a", model="gpt-4o", input_tokens=400)
    assert received == []
    acct.record_call("acme/a", model="gpt-4o", input_tokens=200)
    acct.record_call("acme/a", model="gpt-4o", input_tokens=100)
    assert [a.kind for a in received] == ["capacity_warning"]
    assert received[0].data["fraction"] == pytest.approx(0.6)
    assert [a.kind for a in acct.alerts()] == ["capacity_warning"]


def test_alerts_can_be_acknowledged(acct: tp.Ledger) -> None:
    acct.record_call(
        "a", model="gpt-4o", input_tokens=10, output_tokens=5, max_tokens=5, finish_reason="length"
    )
    (alert,) = acct.alerts(unacknowledged=True)
    assert alert.kind == "truncation"
    assert acct.acknowledge(alert.id)
    assert not acct.acknowledge(alert.id)
    assert acct.alerts(unacknowledged=True) == []
    assert acct.alerts()[0].acknowledged


def test_expired_reservation_stops_counting_and_is_reclaimed(acct: tp.Ledger, clock: Clock) -> None:
    acct.set_budget("acme", tokens=1_000)
    acct.reserve("acme/a", model="gpt-4o", input_tokens=500, max_output_tokens=500, ttl=60)
    with pytest.raises(BudgetExceeded):
        acct.reserve("acme/b", model="gpt-4o", input_tokens=1, max_output_tokens=0)
    clock.now += 61
    assert acct.usage("acme").reserved == 0
    acct.reserve("acme/b", model="gpt-4o", input_tokens=900, max_output_tokens=100).release()
    expired = [r for r in acct.records() if r.status == "expired"]
    assert len(expired) == 1 and expired[0].scope == "acme/a" and expired[0].cost_usd is None


def test_settle_after_reclaim_still_records_the_real_usage(acct: tp.Ledger, clock: Clock) -> None:
    r = acct.reserve("acme/a", model="gpt-4o", input_tokens=10, max_output_tokens=10, ttl=5)
    clock.now += 10
    acct.reclaim()
    record = r.settle(output_tokens=7)
    assert record.output_tokens == 7 and "reclaimed" in (record.error or "")


def test_set_budget_replaces_and_remove_keeps_records(acct: tp.Ledger) -> None:
    acct.set_budget("acme", tokens=10)
    acct.set_budget("acme", usd=5.0, period="monthly", timezone="Europe/Paris")
    (budget,) = acct.budgets()
    assert (budget.tokens, budget.usd, budget.period, budget.timezone) == (
        None,
        5.0,
        "monthly",
        "Europe/Paris",
    )
    acct.record_call("acme/a", model="gpt-4o", input_tokens=3)
    assert acct.remove_budget("acme") and not acct.remove_budget("acme")
    assert acct.budgets() == [] and len(acct.records()) == 1


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"tokens": -1}, {"tokens": 1.5}, {"tokens": 10, "warn_at": 0}, {"tokens": 10, "period": "yearly"}],
)
def test_invalid_budgets_are_refused(acct: tp.Ledger, kwargs: dict[str, object]) -> None:
    with pytest.raises(InputError):
        acct.set_budget("acme", **kwargs)  # type: ignore[arg-type]


def test_records_filter_by_scope_phase_model_task_type_and_limit(acct: tp.Ledger, clock: Clock) -> None:
    for i, (phase, task) in enumerate([("plan", "summary"), ("build", "code"), ("build", "summary")]):
        clock.now += 1
        acct.record_call(
            f"acme/{phase}", model="gpt-4o", input_tokens=i, phase=phase, task_type=task, attempt=i + 1
        )
    acct.record_call("other", model="gpt-4o-mini", input_tokens=9)
    assert [r.input_tokens for r in acct.records(scope="acme")] == [0, 1, 2]
    assert [r.input_tokens for r in acct.records(phase="build", task_type="summary")] == [2]
    assert [r.input_tokens for r in acct.records(model="gpt-4o-mini")] == [9]
    assert [r.input_tokens for r in acct.records(limit=2)] == [2, 9]
    assert [r.attempt for r in acct.records(since=clock.now - 1.5, scope="acme")] == [2, 3]


def test_record_call_keeps_task_type_attempt_and_max_tokens_for_planning(acct: tp.Ledger) -> None:
    acct.record_call(
        "acme/plan",
        model="gpt-4o",
        input_tokens=900,
        output_tokens=4_096,
        max_tokens=4_096,
        finish_reason="length",
        attempt=2,
        phase="plan",
        task_type="summary",
    )
    (record,) = acct.records(task_type="summary")
    assert (record.max_tokens, record.attempt, record.truncated) == (4_096, 2, True)
    assert record.output_utilization == 1.0 and record.finish_reason == "length"


def test_reopening_keeps_data_and_does_not_remigrate(store_url: str) -> None:  # noqa: F811
    with tp.open_ledger(store_url) as first:
        first.set_budget("acme", tokens=5)
        first.record_call("acme", model="gpt-4o", input_tokens=1)
    with tp.open_ledger(store_url) as second:
        assert second.budgets()[0].tokens == 5 and len(second.records()) == 1


def test_threads_sharing_one_ledger_never_overspend(acct: tp.Ledger) -> None:
    from concurrent.futures import ThreadPoolExecutor

    acct.set_budget("threads", tokens=1_000)

    def attempt(i: int) -> bool:
        try:
            with acct.reserve(f"threads/{i % 3}", model="gpt-4o", input_tokens=30, max_output_tokens=20) as r:
                r.settle(output_tokens=20)
            return True
        except BudgetExceeded:
            return False

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(attempt, range(60)))
    usage = acct.usage("threads")
    assert sum(results) == 20 and usage.spent == 1_000 and usage.reserved == 0
    assert len(acct.records(scope="threads")) == 20
