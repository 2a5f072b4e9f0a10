"""What the proxy records of a call: session, HTTP status, first-token time, estimated usage, rewrites.

The same specification on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy
from typer.testing import CliRunner

import tokenpilot as tp
from ledger_support import store_url  # noqa: F401  (fixture)
from tokenpilot.cli import app

COUNTER_COLUMNS = (
    "bucket",
    *(f"{k}_{u}" for k in ("spent", "bucket", "reserved") for u in ("input", "output", "nusd")),
    *(f"{k}_{u}" for k in ("spent", "bucket") for u in ("calls", "unknown")),
    "holds",
)
NEW_RECORD_COLUMNS = (
    "session",
    "http_status",
    "ttft_s",
    "usage_estimated",
    "max_tokens_requested",
    "optimized_from",
    "optimized_to",
    "optimize_actions",
)


@pytest.fixture
def acct(store_url: str) -> Iterator[tp.Ledger]:  # noqa: F811
    ledger = tp.open_ledger(store_url)
    yield ledger
    ledger.close()


def test_reservation_carries_session_and_provider_into_its_record(acct: tp.Ledger) -> None:
    r = acct.reserve(
        "acme/a", model="gpt-4o", input_tokens=100, max_output_tokens=50, session="s-1", provider="azure"
    )
    assert (r.session, r.provider) == ("s-1", "azure")
    record = r.settle(
        output_tokens=20,
        http_status=200,
        ttft_s=0.25,
        usage_estimated=True,
        max_tokens_requested=4_096,
        optimized_from=1_000,
        optimized_to=100,
        optimize_actions="mask:3,trim:1",
    )
    (stored,) = acct.records()
    assert stored == record
    assert (stored.session, stored.provider, stored.http_status, stored.ttft_s) == ("s-1", "azure", 200, 0.25)
    assert stored.usage_estimated is True and stored.max_tokens == 50
    assert (stored.max_tokens_requested, stored.optimized_from, stored.optimized_to) == (4_096, 1_000, 100)
    assert stored.optimize_actions == "mask:3,trim:1"


def test_cancelled_stream_spends_what_it_used_and_releases_the_rest(acct: tp.Ledger) -> None:
    acct.set_budget("acme", tokens=1_000)
    r = acct.reserve("acme/a", model="gpt-4o", input_tokens=300, max_output_tokens=600, session="s")
    assert acct.usage("acme").reserved == 900
    record = r.settle(output_tokens=40, status="cancelled", error="client disconnected", http_status=200)
    usage = acct.usage("acme")
    assert (usage.spent, usage.reserved) == (340, 0)
    assert (record.status, record.error, record.total_tokens) == ("cancelled", "client disconnected", 340)


def test_failed_call_settled_with_a_non_ok_status_keeps_its_http_status(acct: tp.Ledger) -> None:
    r = acct.reserve("acme/a", model="gpt-4o", input_tokens=10, max_output_tokens=10)
    record = r.settle(input_tokens=0, status="error", error="upstream 502", http_status=502)
    assert (record.status, record.http_status, record.total_tokens) == ("error", 502, 0)
    with pytest.raises(tp.InputError, match="status"):
        acct.reserve("acme/a", model="gpt-4o", input_tokens=1, max_output_tokens=1).settle(status="nope")


def test_record_call_accepts_the_proxy_fields(acct: tp.Ledger) -> None:
    record = acct.record_call(
        "acme/a",
        model="gpt-4o",
        input_tokens=10,
        output_tokens=5,
        session="s-2",
        http_status=429,
        status="rate_limited",
        ttft_s=None,
        usage_estimated=True,
        max_tokens_requested=100,
        optimized_from=50,
        optimized_to=10,
        optimize_actions="compact",
    )
    assert acct.records() == [record]
    assert (record.session, record.http_status, record.usage_estimated) == ("s-2", 429, True)
    with pytest.raises(tp.InputError, match="http_status"):
        acct.record_call("acme/a", model="gpt-4o", input_tokens=1, http_status=-1)


def test_report_groups_by_session(acct: tp.Ledger) -> None:
    for session, tokens in (("s-1", 10), ("s-1", 20), ("s-2", 5)):
        acct.record_call("acme", model="gpt-4o", input_tokens=tokens, session=session)
    acct.record_call("acme", model="gpt-4o", input_tokens=1)
    report = acct.report(by="session")
    assert [(g.key, g.calls, g.total_tokens) for g in report.groups] == [
        ("s-1", 2, 30),
        ("s-2", 1, 5),
        ("(none)", 1, 1),
    ]


def test_report_cli_groups_by_session(tmp_path: Path) -> None:
    db = str(tmp_path / "l.db")
    with tp.open_ledger(db) as acct:
        acct.record_call("acme", model="gpt-4o", input_tokens=7, session="abc")
    result = CliRunner().invoke(app, ["report", "--by", "session", "--since", "all", "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    assert [g["key"] for g in json.loads(result.output)["groups"]] == ["abc"]


def test_threads_reserving_and_settling_on_one_ledger_keep_every_record(acct: tp.Ledger) -> None:
    acct.set_budget("pool", tokens=10**9)

    def call(i: int) -> int:
        r = acct.reserve("pool/a", model="gpt-4o", input_tokens=10, max_output_tokens=10, session=str(i % 4))
        return r.settle(output_tokens=i % 10).id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(call, range(200)))
    assert len(set(ids)) == 200 and len(acct.records(scope="pool")) == 200
    assert acct.usage("pool").reserved == 0
    assert acct.usage("pool").spent == sum(10 + i % 10 for i in range(200))


def test_settling_one_reservation_from_two_threads_records_it_once(acct: tp.Ledger) -> None:
    r = acct.reserve("acme/a", model="gpt-4o", input_tokens=10, max_output_tokens=10)

    def settle(_: int) -> str:
        try:
            r.settle(output_tokens=1)
            return "settled"
        except tp.InputError:
            return "refused"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = sorted(pool.map(settle, range(4)))
    assert outcomes == ["refused"] * 3 + ["settled"]
    assert len(acct.records()) == 1


def _sa_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return url.replace("postgresql://", "postgresql+psycopg://", 1)
    return f"sqlite:///{url}"


def test_a_ledger_from_the_numbered_schema_is_migrated_and_each_migration_recorded(
    store_url: str,  # noqa: F811
) -> None:
    with tp.open_ledger(store_url) as acct:
        acct.set_budget("acme", tokens=1_000, period="daily")
        acct.record_call("acme", model="gpt-4o", input_tokens=3)
        acct.reserve("acme/a", model="gpt-4o", input_tokens=10, max_output_tokens=5)
    # Turn it back into what tokenpilot 0.1 wrote: schema version 1, no proxy columns, no counters.
    engine = sqlalchemy.create_engine(_sa_url(store_url))
    with engine.begin() as conn:
        for column in NEW_RECORD_COLUMNS:
            conn.exec_driver_sql(f"ALTER TABLE tp_records DROP COLUMN {column}")
        for column in ("session", "provider"):
            conn.exec_driver_sql(f"ALTER TABLE tp_reservations DROP COLUMN {column}")
        for column in COUNTER_COLUMNS:
            conn.exec_driver_sql(f"ALTER TABLE tp_budgets DROP COLUMN {column}")
        conn.exec_driver_sql("DROP TABLE tp_spent")
        conn.exec_driver_sql("DROP TABLE tp_migrations")
        conn.exec_driver_sql("CREATE TABLE tp_schema (version INTEGER NOT NULL)")
        conn.exec_driver_sql("INSERT INTO tp_schema (version) VALUES (1)")
    with tp.open_ledger(store_url) as acct:
        old, new = acct.records()[0], acct.record_call("acme", model="gpt-4o", input_tokens=1, session="s")
        assert old.session is None and old.usage_estimated is False and new.session == "s"
        usage = acct.usage("acme")  # counted from the records and holds already there
        assert (usage.spent, usage.reserved, usage.active_reservations) == (4, 15, 1)
        assert acct.verify_counters() == []
    with engine.connect() as conn:
        applied = conn.exec_driver_sql("SELECT name, applied_at FROM tp_migrations ORDER BY name").all()
        assert [name for name, _ in applied] == [
            "m001_initial",
            "m002_call_details",
            "m003_counters",
            "m004_hot_path_functions",
            "m005_lean_reservations",
        ]
        assert all(at > 0 for _, at in applied)
        assert not sqlalchemy.inspect(conn).has_table("tp_schema")
    engine.dispose()


def test_a_ledger_with_a_migration_from_a_newer_tokenpilot_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    tp.open_ledger(str(path)).close()
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO tp_migrations (name, applied_at) VALUES ('m999_future', 1.0)")
    engine.dispose()
    with pytest.raises(tp.StoreError, match="m999_future"):
        tp.open_ledger(str(path))
