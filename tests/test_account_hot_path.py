"""The reservation hot path: one statement per reserve and per settle on PostgreSQL, and budgets that
another process adds, replaces or removes are obeyed at once by a process that has read them before.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

import tokenpilot as tp
from ledger_support import store_url  # noqa: F401  (fixture)


@pytest.fixture
def two(store_url: str) -> Iterator[tuple[tp.Ledger, tp.Ledger]]:  # noqa: F811
    """Two ledgers on one store, as two processes would open it."""
    with tp.open_ledger(store_url) as agent, tp.open_ledger(store_url) as admin:
        yield agent, admin


@pytest.fixture
def postgres_two(two: tuple[tp.Ledger, tp.Ledger]) -> tuple[tp.Ledger, tp.Ledger]:
    """`two`, on PostgreSQL only: its hot path is one prepared statement per call."""
    if two[0].dialect != "postgresql":
        pytest.skip("the one-statement path is PostgreSQL's")
    return two


def _call(acct: tp.Ledger, scope: str, tokens: int) -> tp.LedgerRecord:
    with acct.reserve(scope, model="gpt-4o", input_tokens=tokens, max_output_tokens=0) as r:
        return r.settle(input_tokens=tokens)


def _spy_on_writes(acct: tp.Ledger, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[str]]:
    """(the hot path's prepared statements, the general transactions) `acct` runs from now on."""
    store = acct._store
    calls: list[str] = []
    transactions: list[str] = []
    real_call, real_transact = store.call_prepared, store.transact
    monkeypatch.setattr(
        store, "call_prepared", lambda name, sql, params: calls.append(sql) or real_call(name, sql, params)
    )
    monkeypatch.setattr(
        store, "transact", lambda fn, **kw: transactions.append("tx") or real_transact(fn, **kw)
    )
    return calls, transactions


def test_a_budget_added_by_another_process_refuses_the_next_call(two: tuple[tp.Ledger, tp.Ledger]) -> None:
    agent, admin = two
    _call(agent, "acme/bot", 50)  # the agent has now read that no budget encloses acme/bot
    admin.set_budget("acme", tokens=100)
    _call(agent, "acme/bot", 40)
    with pytest.raises(tp.BudgetExceeded) as refused:
        _call(agent, "acme/bot", 40)
    assert (refused.value.spent, refused.value.limit) == (90, 100)
    assert agent.verify_counters() == [] and admin.verify_counters() == []


def test_a_budget_replaced_or_removed_by_another_process_is_obeyed(two: tuple[tp.Ledger, tp.Ledger]) -> None:
    agent, admin = two
    admin.set_budget("acme", tokens=1_000)
    _call(agent, "acme/bot", 600)
    time.sleep(0.002)  # a replaced budget is told apart by its updated_at
    admin.set_budget("acme", tokens=700)
    with pytest.raises(tp.BudgetExceeded):
        _call(agent, "acme/bot", 200)
    admin.remove_budget("acme")
    _call(agent, "acme/bot", 5_000)
    admin.set_budget("acme", tokens=10_000)  # counted afresh from the records: 600 + 5,000
    assert admin.usage("acme").spent == 5_600
    _call(agent, "acme/bot", 100)
    assert agent.usage("acme").spent == 5_700
    assert agent.verify_counters() == []


def test_a_hold_held_in_another_process_counts_against_this_one(two: tuple[tp.Ledger, tp.Ledger]) -> None:
    agent, admin = two
    admin.set_budget("acme", tokens=1_000)
    _call(agent, "acme/bot", 10)
    with admin.reserve("acme/other", model="gpt-4o", input_tokens=900, max_output_tokens=0):
        with pytest.raises(tp.BudgetExceeded) as refused:
            _call(agent, "acme/bot", 100)
        assert refused.value.reserved == 900
    _call(agent, "acme/bot", 100)
    assert agent.usage("acme").spent == 110 and agent.verify_counters() == []


@pytest.mark.postgres
def test_on_postgresql_a_reserve_and_a_settle_are_one_statement_each(
    postgres_two: tuple[tp.Ledger, tp.Ledger], monkeypatch: pytest.MonkeyPatch
) -> None:
    agent, admin = postgres_two
    admin.set_budget("acme", tokens=100_000, period="daily")
    admin.set_budget("acme/bot", tokens=50_000)
    _call(agent, "acme/bot", 10)  # reads the budgets once, and the first reclaim sweep
    calls, transactions = _spy_on_writes(agent, monkeypatch)
    for _ in range(3):
        _call(agent, "acme/bot", 10)
    assert [sql.split("(")[0] for sql in calls] == ["SELECT * FROM tp_hold", "SELECT * FROM tp_finish"] * 3
    assert transactions == []
    assert agent.usage("acme/bot").spent == 40 and agent.verify_counters() == []


@pytest.mark.postgres
def test_on_postgresql_a_connection_the_server_ended_is_made_again_and_nothing_is_lost(
    postgres_two: tuple[tp.Ledger, tp.Ledger],
) -> None:
    agent, admin = postgres_two
    admin.set_budget("acme", tokens=1_000, period="daily")
    _call(agent, "acme/bot", 10)
    ended = agent._store._driver_connection().pgconn.backend_pid
    for step in ("reserve", "settle"):
        held = agent.reserve("acme/bot", model="gpt-4o", input_tokens=20, max_output_tokens=0)
        if step == "settle":
            ended = agent._store._driver_connection().pgconn.backend_pid
        admin._store.run(lambda conn, pid=ended: conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid})"))
        if step == "reserve":
            held.release()
            held = agent.reserve("acme/bot", model="gpt-4o", input_tokens=20, max_output_tokens=0)
        held.settle(input_tokens=20)
    assert agent._store._driver_connection().pgconn.backend_pid != ended
    with pytest.raises(tp.BudgetExceeded):
        agent.reserve("acme/bot", model="gpt-4o", input_tokens=960, max_output_tokens=0)
    assert agent.usage("acme").spent == 50 and agent.usage("acme").reserved == 0
    assert agent.verify_counters() == []


@pytest.mark.postgres
def test_on_postgresql_a_prepared_statement_dropped_on_the_server_is_prepared_again(
    postgres_two: tuple[tp.Ledger, tp.Ledger], monkeypatch: pytest.MonkeyPatch
) -> None:
    agent, admin = postgres_two
    admin.set_budget("acme", tokens=1_000, period="daily")
    _call(agent, "acme/bot", 10)
    agent._store._driver_connection().execute("DEALLOCATE ALL")  # as a connection pooler may
    _call(agent, "acme/bot", 10)  # the general path, and the name forgotten
    calls, transactions = _spy_on_writes(agent, monkeypatch)
    _call(agent, "acme/bot", 10)
    assert len(calls) == 2 and transactions == []
    assert agent.usage("acme").spent == 30 and agent.verify_counters() == []


def _admin_in_another_process(url: str, code: str) -> None:
    """Run `code` with `acct` open on `url` in a new Python process (a `tokenpilot budget` command)."""
    script = f"import tokenpilot as tp\nwith tp.open_ledger({url!r}) as acct:\n    {code}\n"
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


def _holds_written(acct: tp.Ledger) -> int:
    return acct._store.run(
        lambda conn: conn.exec_driver_sql("SELECT count(*) FROM tp_reservations").scalar(), read_only=True
    )


def test_with_no_budget_over_its_scope_a_reservation_writes_no_hold_and_the_call_is_still_recorded(
    store_url: str,  # noqa: F811
) -> None:
    with tp.open_ledger(store_url) as acct:
        acct.set_budget("other", tokens=10)  # a budget elsewhere does not enclose acme/bot
        _call(acct, "acme/bot", 1)  # the first reservation also sweeps expired holds (the general path)
        with acct.reserve("acme/bot", model="gpt-4o", input_tokens=900, max_output_tokens=100) as r:
            held = _holds_written(acct)
            record = r.settle(input_tokens=800, output_tokens=50, finish_reason="stop")
        assert held == 0
        assert (record.reservation_id, record.input_tokens, record.output_tokens) == (r.id, 800, 50)
        assert [(c.scope, c.input_tokens) for c in acct.records(scope="acme")] == [
            ("acme/bot", 1),
            ("acme/bot", 800),
        ]
        assert _holds_written(acct) == 0 and acct.verify_counters() == []


def test_a_budget_another_process_adds_while_a_call_holds_nothing_counts_that_call_and_refuses_the_next(
    store_url: str,  # noqa: F811
) -> None:
    with tp.open_ledger(store_url) as agent:
        _call(agent, "acme/bot", 10)  # this process has read that no budget encloses acme/bot
        in_flight = agent.reserve("acme/bot", model="gpt-4o", input_tokens=30, max_output_tokens=0)
        _admin_in_another_process(store_url, "acct.set_budget('acme', tokens=100)")
        in_flight.settle(input_tokens=30)  # spent after the budget was set: counted in it
        assert agent.usage("acme").spent == 40
        _call(agent, "acme/bot", 50)
        with pytest.raises(tp.BudgetExceeded) as refused:
            _call(agent, "acme/bot", 20)
        assert (refused.value.spent, refused.value.limit) == (90, 100)
        _admin_in_another_process(store_url, "acct.remove_budget('acme')")
        _call(agent, "acme/bot", 500)  # no budget again: goes through, holding nothing
        assert agent.verify_counters() == []
        assert sum(r.input_tokens for r in agent.records(scope="acme")) == 590


def test_a_budget_set_by_another_ledger_in_this_process_is_obeyed_on_the_next_call(
    two: tuple[tp.Ledger, tp.Ledger],
) -> None:
    agent, admin = two
    for _ in range(3):
        _call(agent, "acme/bot", 10)
    admin.set_budget("acme/bot", tokens=35)
    with pytest.raises(tp.BudgetExceeded):
        _call(agent, "acme/bot", 10)
    agent.set_budget("acme/bot", tokens=1_000)  # the ledger's own change, through its own pool
    _call(agent, "acme/bot", 10)
    assert agent.usage("acme/bot").spent == 40 and agent.verify_counters() == []


@pytest.mark.postgres
def test_on_postgresql_a_call_no_budget_encloses_reads_one_count_and_writes_only_its_record(
    postgres_two: tuple[tp.Ledger, tp.Ledger], monkeypatch: pytest.MonkeyPatch
) -> None:
    agent, admin = postgres_two
    admin.set_budget("other", tokens=10)
    _call(agent, "acme/bot", 10)  # the first reclaim sweep
    calls, transactions = _spy_on_writes(agent, monkeypatch)
    for _ in range(3):
        _call(agent, "acme/bot", 10)
    assert [sql.split("(")[0] for sql in calls] == ["SELECT count", "SELECT * FROM tp_finish"] * 3
    assert transactions == [] and _holds_written(agent) == 0
    assert agent.usage("acme").spent == 40 and len(agent.records(scope="acme")) == 4


def test_a_budget_set_by_another_process_after_the_scope_was_seen_unbudgeted_refuses_the_very_next_call(
    store_url: str,  # noqa: F811
) -> None:
    with tp.open_ledger(store_url) as agent:
        for _ in range(3):
            _call(agent, "acme/bot", 20)  # seen unbudgeted: the later ones hold nothing
        with agent.reserve("acme/bot", model="gpt-4o", input_tokens=1, max_output_tokens=0) as r:
            assert not r.written and _holds_written(agent) == 0
            r.settle(input_tokens=1)
        _admin_in_another_process(store_url, "acct.set_budget('acme', tokens=100)")
        with pytest.raises(tp.BudgetExceeded) as refused:
            _call(agent, "acme/bot", 40)
        assert (refused.value.spent, refused.value.limit) == (61, 100)
        with agent.reserve("acme/bot", model="gpt-4o", input_tokens=39, max_output_tokens=0) as r:
            assert r.written and _holds_written(agent) == 1
            r.settle(input_tokens=39)
        assert agent.usage("acme").spent == 100 and agent.verify_counters() == []


def test_every_call_begun_after_set_budget_returned_holds_and_every_call_counts(
    two: tuple[tp.Ledger, tp.Ledger],
) -> None:
    agent, admin = two
    _call(agent, "acme/bot", 10)  # the first reclaim sweep
    begun: list[tuple[float, float, bool]] = []  # (call begun, reservation made, a hold written)
    stop = threading.Event()

    def calls() -> None:
        while not stop.is_set() and len(begun) < 2_000:
            started = time.monotonic()
            with agent.reserve("acme/bot", model="gpt-4o", input_tokens=10, max_output_tokens=0) as r:
                begun.append((started, time.monotonic(), r.written))
                r.settle(input_tokens=10)

    worker = threading.Thread(target=calls)
    worker.start()
    try:
        while len(begun) < 20:
            time.sleep(0.001)
        setting = time.monotonic()
        admin.set_budget("acme", tokens=10**9)
        set_at = time.monotonic()
        while len([1 for started, _, _ in begun if started > set_at]) < 20 and worker.is_alive():
            time.sleep(0.001)
    finally:
        stop.set()
        worker.join(60)
    before = [written for _, reserved, written in begun if reserved < setting]
    after = [written for started, _, written in begun if started > set_at]
    assert len(before) >= 20 and not any(before)  # no budget yet: nothing held
    assert len(after) >= 20 and all(after)
    assert agent.usage("acme").spent == 10 * (1 + len(begun)) and agent.verify_counters() == []
