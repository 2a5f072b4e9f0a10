"""The counters are exact: after any sequence of operations they equal a full recount of the ledger.

Random reservations, settlements, releases, holds left to expire, back-dated and imported records,
budgets set (on a ledger that already has spend) and removed, and the clock moving across period
boundaries and past TTLs; after each step every budget's counters must equal a recount from the
records and holds, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import csv
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tokenpilot as tp
from ledger_support import PG_URL, pg_schema_url, require_pg

SCOPES = ["a", "a/x", "a/y", "a/x/deep", "b"]
PERIODS = ["none", "hourly", "daily", "rolling:2h", "rolling:90s"]
MODELS = ["gpt-4o", "in-house-llm-7b"]

operation = st.one_of(
    st.tuples(
        st.just("budget"), st.sampled_from(["a", "a/x", "b"]), st.sampled_from(PERIODS), st.integers(0, 5_000)
    ),
    st.tuples(st.just("remove"), st.sampled_from(["a", "a/x", "b"])),
    st.tuples(
        st.just("call"),
        st.sampled_from(SCOPES),
        st.integers(0, 400),
        st.integers(0, 400),
        st.sampled_from(["settle", "release", "cancel", "hold"]),
        st.sampled_from(MODELS),
    ),
    st.tuples(st.just("record"), st.sampled_from(SCOPES), st.integers(0, 300), st.integers(-7_200, 600)),
    st.tuples(st.just("import"), st.sampled_from(SCOPES), st.integers(1, 4), st.integers(-90_000, 0)),
    st.tuples(st.just("wait"), st.sampled_from([1, 59, 61, 700, 3_600, 86_400])),
    st.tuples(st.just("reclaim")),
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_780_000_000.0 + 1_234.5

    def __call__(self) -> float:
        return self.now


def apply(
    acct: tp.Ledger, clock: Clock, step: tuple[object, ...], held: list[tp.Reservation], tmp: Path
) -> None:
    kind = step[0]
    if kind == "budget":
        _, scope, period, tokens = step
        # A set on a ledger that already has spend and holds: the recount must match the counting.
        if tokens == 0:
            acct.set_budget(str(scope), usd=0.05, period=str(period))
        else:
            acct.set_budget(str(scope), tokens=int(tokens), period=str(period))
    elif kind == "remove":
        acct.remove_budget(str(step[1]))
    elif kind == "call":
        _, scope, inp, out, action, model = step
        try:
            r = acct.reserve(
                str(scope), model=str(model), input_tokens=int(inp), max_output_tokens=int(out), ttl=60
            )
        except tp.BudgetError:  # refused, or a USD limit and an unknown price
            return
        if action == "settle":
            r.settle(input_tokens=int(inp), output_tokens=int(out) // 2)
        elif action == "release":
            r.release()
        elif action == "cancel":
            r.settle(input_tokens=int(inp), output_tokens=int(out) // 3, status="cancelled")
        else:
            held.append(r)
    elif kind == "record":
        _, scope, tokens, offset = step
        acct.record_call(str(scope), model="gpt-4o", input_tokens=int(tokens), ts=clock.now + int(offset))
    elif kind == "import":
        _, scope, rows, offset = step
        path = tmp / f"import-{uuid.uuid4().hex}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["timestamp", "model", "prompt_tokens", "completion_tokens", "scope"])
            for i in range(int(rows)):
                writer.writerow([clock.now + int(offset) + i * 977, MODELS[i % 2], 100 + i, 7, scope])
        acct.import_file(path)
    elif kind == "wait":
        clock.now += int(step[1])
    elif kind == "reclaim":
        acct.reclaim()


def check(acct: tp.Ledger, clock: Clock) -> None:
    assert acct.verify_counters() == []
    # And independently of the recount in the library: the records and holds as the API shows them.
    records = acct.records()
    for budget in acct.budgets():
        usage = acct.usage(budget.scope)
        beneath = [r for r in records if r.scope == budget.scope or r.scope.startswith(budget.scope + "/")]
        end = usage.period_end
        if budget.period.startswith("rolling"):
            period = tp_period(budget.period)
            end = period.bucket(clock.now) + period.step
        counted = [
            r
            for r in beneath
            if (usage.period_start is None or r.ts >= usage.period_start) and (end is None or r.ts < end)
        ]
        assert usage.calls == len(counted)
        assert usage.line("tokens").spent == sum(r.total_tokens for r in counted) if budget.tokens else True
        assert usage.unknown_cost_calls == sum(1 for r in counted if r.cost_usd is None)


def tp_period(spec: str):  # type: ignore[no-untyped-def]
    from tokenpilot._budget import Period

    return Period.parse(spec)


def run_steps(url: str, steps: list[tuple[object, ...]]) -> None:
    clock = Clock()
    held: list[tp.Reservation] = []
    with tp.open_ledger(url, clock=clock) as acct, tempfile.TemporaryDirectory() as tmp:
        acct.set_budget("a", tokens=4_000, period="daily", timezone="Europe/Paris")
        acct.set_budget("a/x", tokens=1_500, period="rolling:2h")
        acct.set_budget("b", usd=0.02, period="hourly")
        for step in steps:
            apply(acct, clock, step, held, Path(tmp))
            check(acct, clock)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=1, max_size=20))
def test_sqlite_counters_equal_a_full_recount_after_any_operations(steps: list[tuple[object, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run_steps(str(Path(tmp) / "l.db"), steps)


@pytest.mark.postgres
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=1, max_size=14))
def test_postgres_counters_equal_a_full_recount_after_any_operations(steps: list[tuple[object, ...]]) -> None:
    import sqlalchemy

    base = require_pg()
    schema = f"t_count_{uuid.uuid4().hex[:10]}"
    engine = sqlalchemy.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        run_steps(pg_schema_url(base, schema), steps)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


assert PG_URL is None or PG_URL.startswith("postgresql")
