"""Reliability on each store: racing processes, killed processes, locked/corrupt/unreachable databases.

The race runs 8 processes × 500 reservations under CI (CI set) or TOKENPILOT_TEST_FULL_RACE=1, and
8 × 60 otherwise to keep a developer's run short.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import tokenpilot as tp
from ledger_support import IN_CI, store_url  # noqa: F401  (fixture)
from tokenpilot import BudgetExceeded, StoreError

WORKER = str(Path(__file__).with_name("ledger_worker.py"))
PROCESSES = 8
PER_PROCESS = 500 if (IN_CI or os.environ.get("TOKENPILOT_TEST_FULL_RACE")) else 40


def worker_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENPILOT_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def race(urls: list[str], tmp_path: Path) -> None:
    """PROCESSES workers × PER_PROCESS reservations on one budget, worker i on urls[i % len(urls)]."""
    # Every call holds 20 tokens and spends at most 20; the limit admits about half of them.
    limit = 20 * PROCESSES * PER_PROCESS // 2
    with tp.open_ledger(urls[0]) as acct:
        acct.record_call("race/before", model="gpt-4o", input_tokens=0)  # a ledger with history
        acct.set_budget("race", tokens=limit, period="daily")
    go = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                WORKER,
                "race",
                urls[i % len(urls)],
                f"race/agent-{i}",
                str(PER_PROCESS),
                str(i),
                str(go),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=worker_env(),
        )
        for i in range(PROCESSES)
    ]
    time.sleep(1.0)  # let every worker import and connect before the start signal
    go.touch()
    results = []
    for process in workers:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    settled = sum(r["ok"] for r in results)
    assert settled + sum(r["refused"] for r in results) == PROCESSES * PER_PROCESS
    with tp.open_ledger(urls[0]) as acct:
        usage = acct.usage("race")
        records = [r for r in acct.records(scope="race") if r.scope != "race/before"]
        assert usage.spent <= limit
        assert usage.reserved == 0 and usage.active_reservations == 0
        assert len(records) == settled and all(r.status == "ok" for r in records)
        assert len({r.request_id for r in records}) == settled  # no record lost or written twice
        assert usage.spent == sum(r.total_tokens for r in records)
        assert acct.verify_counters() == []
        # The limit was really contended: most of it got used, and calls were refused.
        assert usage.spent + usage.reserved > limit * 0.5
        assert settled < PROCESSES * PER_PROCESS


@pytest.mark.slow
def test_racing_processes_never_overspend_lose_records_or_leak_reservations(
    store_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    race([store_url], tmp_path)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_hosts_worth_of_engines_on_one_postgres_never_overspend(tmp_path: Path) -> None:
    import sqlalchemy

    from ledger_support import pg_schema_url, require_pg

    base = require_pg()
    schema = f"t_hosts_{os.getpid()}"
    engine = sqlalchemy.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        # Two spellings of the server, as two hosts would reach it: separate engines and pools.
        first = pg_schema_url(base, schema)
        race([first, first.replace("127.0.0.1", "localhost", 1)], tmp_path)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


def test_sigkilled_process_reservation_is_reclaimed_after_ttl(store_url: str) -> None:  # noqa: F811
    with tp.open_ledger(store_url) as acct:
        acct.set_budget("crash", tokens=1_500)
    worker = subprocess.Popen(
        [sys.executable, WORKER, "hold", store_url, "crash/agent", "2.0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=worker_env(),
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "held"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        with tp.open_ledger(store_url) as acct:
            assert acct.usage("crash").reserved == 1_000
            with pytest.raises(BudgetExceeded):
                acct.reserve("crash/other", model="gpt-4o", input_tokens=600, max_output_tokens=0)
            time.sleep(2.2)
            assert acct.usage("crash").reserved == 0  # past its TTL it stops counting at once
            acct.reserve("crash/other", model="gpt-4o", input_tokens=1_000, max_output_tokens=500).release()
            expired = [r for r in acct.records() if r.status == "expired"]
            assert [r.scope for r in expired] == ["crash/agent"]
            assert acct.active_reservations() == 0
            assert acct.verify_counters() == []
            usage = acct.usage("crash")
            assert (usage.spent, usage.reserved, usage.active_reservations) == (0, 0, 0)
    finally:
        if worker.poll() is None:
            worker.kill()


def test_locked_sqlite_database_is_a_clear_error_and_nothing_is_half_written(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    acct = tp.open_ledger(str(path), busy_timeout=0.2)
    acct.set_budget("acme", tokens=1_000)
    r = acct.reserve("acme/a", model="gpt-4o", input_tokens=100, max_output_tokens=100)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked"):
            r.settle(output_tokens=50)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert acct.records() == []
    assert acct.usage("acme").reserved == 200  # the hold is intact, so the settle can be retried
    assert r.settle(output_tokens=50).output_tokens == 50
    assert acct.usage("acme").reserved == 0 and len(acct.records()) == 1
    acct.close()


@pytest.mark.postgres
def test_locked_postgres_table_is_a_clear_error_and_nothing_is_half_written() -> None:
    import sqlalchemy

    from ledger_support import pg_schema_url, require_pg

    base = require_pg()
    schema = f"t_lock_{os.getpid()}"
    engine = sqlalchemy.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = pg_schema_url(base, schema)
    try:
        acct = tp.open_ledger(url, busy_timeout=0.3)
        r = acct.reserve("acme/a", model="gpt-4o", input_tokens=100, max_output_tokens=100)
        with engine.connect() as blocker:
            blocker.exec_driver_sql(f"LOCK TABLE {schema}.tp_records IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(StoreError, match="locked"):
                r.settle(output_tokens=50)
            blocker.rollback()
        assert acct.records() == [] and acct.usage("acme").reserved == 200
        r.settle(output_tokens=50)
        assert len(acct.records()) == 1
        acct.close()
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


def test_corrupt_sqlite_file_is_a_clear_error_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    garbage = b"this is not a database\n" * 400
    path.write_bytes(garbage)
    with pytest.raises(StoreError, match="corrupt or not a database"):
        tp.open_ledger(str(path))
    assert path.read_bytes() == garbage


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    tp.open_ledger(str(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO tp_migrations (name, applied_at) VALUES ('m099_from_the_future', 0)")
    with pytest.raises(StoreError, match="newer"):
        tp.open_ledger(str(path))


def test_unreachable_postgres_is_a_clear_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(StoreError, match="cannot reach PostgreSQL"):
        tp.open_ledger(f"postgresql://nobody:secret@127.0.0.1:{port}/nothing", busy_timeout=2)
    assert time.monotonic() - started < 30


def test_password_never_appears_in_errors() -> None:
    with pytest.raises(StoreError) as error:
        tp.open_ledger("postgresql://nobody:hunter2@127.0.0.1:9/nothing", busy_timeout=1)
    assert "hunter2" not in str(error.value)


_HOLD_LOCK = (
    "import fcntl, os, sys\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "print('held', flush=True)\n"
    "sys.stdin.readline()\n"
)


@contextlib.contextmanager
def _lock_file_held(lock: str) -> Iterator[Callable[[], None]]:
    """Another process holds the ledger's lock file; call the yielded function to let it go."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, lock], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )

    def let_go() -> None:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=10)

    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield let_go
    finally:
        if holder.poll() is None:
            holder.kill()


def test_a_writer_queued_on_the_lock_file_times_out_clearly_and_leaves_no_lock_behind(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    acct = tp.open_ledger(str(path), busy_timeout=0.3)
    acct.set_budget("acme", tokens=1_000)
    try:
        with _lock_file_held(f"{path}.lock") as let_go:
            with pytest.raises(StoreError, match="locked by another process"):
                acct.reserve("acme/a", model="gpt-4o", input_tokens=100, max_output_tokens=100)
            let_go()
        # The abandoned wait took the lock when the holder let go, and gave it back at once.
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                _HOLD_LOCK.replace("fcntl.LOCK_EX", "fcntl.LOCK_EX | fcntl.LOCK_NB"),
                f"{path}.lock",
            ],
            input="\n",
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert probe.returncode == 0 and probe.stdout.strip() == "held"
        with acct.reserve("acme/a", model="gpt-4o", input_tokens=100, max_output_tokens=100) as r:
            r.settle(output_tokens=10)
        assert acct.usage("acme").spent == 110 and acct.verify_counters() == []
    finally:
        acct.close()


def test_wait_false_raises_store_busy_at_once_and_leaves_the_call_retryable(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    acct = tp.open_ledger(str(path), busy_timeout=5)
    acct.set_budget("acme", tokens=1_000)
    r = acct.reserve("acme/a", model="gpt-4o", input_tokens=100, max_output_tokens=100, wait=False)
    with _lock_file_held(f"{path}.lock") as let_go:
        started = time.monotonic()
        with pytest.raises(tp.StoreBusy):
            acct.reserve("acme/b", model="gpt-4o", input_tokens=100, max_output_tokens=100, wait=False)
        with pytest.raises(tp.StoreBusy):
            r.settle(output_tokens=10, wait=False)
        assert time.monotonic() - started < 2  # not the 5 s busy_timeout
        let_go()
    assert r.active and acct.active_reservations() == 1  # the refused-to-wait reserve held nothing
    r.settle(output_tokens=10, wait=False)
    assert acct.usage("acme").spent == 110 and acct.active_reservations() == 0
    assert acct.verify_counters() == []
    acct.close()
