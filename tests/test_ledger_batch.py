"""`Ledger.batch()`: several settlements in one SQLite transaction, each in a savepoint of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tokenpilot as tp
from ledger_support import store_url  # noqa: F401  (fixture)

HOLD_LOCK = (
    "import fcntl, os, sys\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "print('held', flush=True)\n"
    "sys.stdin.readline()\n"
)


def _hold(acct: tp.Ledger, scope: str, tokens: int) -> tp.Reservation:
    return acct.reserve(scope, model="gpt-4o", input_tokens=tokens, max_output_tokens=100)


def test_settlements_in_a_batch_are_each_recorded_and_counted(store_url: str) -> None:  # noqa: F811
    with tp.open_ledger(store_url) as acct:
        acct.set_budget("acme", tokens=100_000)
        held = [_hold(acct, f"acme/agent{i}", 1_000 + i) for i in range(5)]
        with acct.batch():
            records = [
                r.settle(input_tokens=r.input_tokens, output_tokens=10 * i) for i, r in enumerate(held)
            ]
        assert [r.status for r in records] == ["ok"] * 5
        assert acct.usage("acme").spent == sum(1_000 + i + 10 * i for i in range(5))
        assert acct.usage("acme").reserved == 0
        assert acct.active_reservations() == 0 and acct.verify_counters() == []
        assert sorted(r.id for r in acct.records()) == sorted(r.id for r in records)


def test_a_sqlite_batch_commits_once_at_the_end_of_the_block(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.db")
    with tp.open_ledger(path) as acct, tp.open_ledger(path) as other:
        acct.set_budget("acme", tokens=100_000)
        held = [_hold(acct, "acme/a", 500) for _ in range(3)]
        with acct.batch():
            for r in held:
                r.settle(output_tokens=5)
            assert other.records() == []  # not committed yet: another connection sees none
            assert other.usage("acme").reserved == 3 * 600
        assert len(other.records()) == 3 and other.usage("acme").spent == 3 * 505


def test_a_refusal_inside_a_batch_is_rolled_back_alone(store_url: str) -> None:  # noqa: F811
    with tp.open_ledger(store_url) as acct:
        acct.set_budget("acme", tokens=5_000)
        first, second = _hold(acct, "acme/a", 1_000), _hold(acct, "acme/b", 1_000)
        with acct.batch():
            first.settle(output_tokens=50)
            with pytest.raises(tp.BudgetExceeded):
                _hold(acct, "acme/c", 10_000)
            second.settle(output_tokens=70)
        usage = acct.usage("acme")
        assert (usage.spent, usage.reserved) == (1_050 + 1_070, 0)
        assert acct.active_reservations() == 0 and acct.verify_counters() == []


def test_an_exception_in_the_block_rolls_the_whole_batch_back(tmp_path: Path) -> None:
    with tp.open_ledger(str(tmp_path / "ledger.db")) as acct:
        acct.set_budget("acme", tokens=100_000)
        r = _hold(acct, "acme/a", 1_000)
        with pytest.raises(RuntimeError), acct.batch():
            _hold(acct, "acme/b", 2_000)
            raise RuntimeError("the caller gave up")
        # Only the reservation made before the block holds; nothing of the block was written.
        assert acct.active_reservations() == 1 and acct.usage("acme").reserved == 1_100
        r.settle(output_tokens=1)
        assert acct.verify_counters() == []


def test_a_batch_that_may_not_wait_raises_store_busy_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with tp.open_ledger(str(path)) as acct:
        acct.set_budget("acme", tokens=100_000)
        r = _hold(acct, "acme/a", 1_000)
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, f"{path}.lock"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        entered = False
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            with pytest.raises(tp.StoreBusy), acct.batch(wait=False):
                entered = True
        finally:
            holder.kill()
            holder.wait(10)
        assert not entered and r.active
        with acct.batch(wait=False):
            r.settle(output_tokens=3)
        assert acct.usage("acme").spent == 1_003 and acct.verify_counters() == []


@settings(max_examples=25, deadline=None)
@given(outputs=st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=12))
def test_a_batch_settles_exactly_what_settling_one_by_one_would(
    tmp_path_factory: pytest.TempPathFactory, outputs: list[int]
) -> None:
    base = tmp_path_factory.mktemp("batch")
    totals = []
    for batched in (False, True):
        with tp.open_ledger(str(base / f"{batched}.db")) as acct:
            acct.set_budget("acme", tokens=10**9)
            held = [_hold(acct, f"acme/{i % 3}", 200 + i) for i in range(len(outputs))]
            if batched:
                with acct.batch():
                    for r, out in zip(held, outputs, strict=True):
                        r.settle(output_tokens=out)
            else:
                for r, out in zip(held, outputs, strict=True):
                    r.settle(output_tokens=out)
            assert acct.verify_counters() == [] and acct.active_reservations() == 0
            totals.append(
                [(u.spent, u.reserved) for u in (acct.usage(s) for s in ("acme", "acme/0", "acme/1"))]
            )
    assert totals[0] == totals[1]


def test_a_batch_that_may_not_wait_finds_a_foreign_sqlite_writer_busy(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with tp.open_ledger(str(path), busy_timeout=0.2) as acct:
        acct.set_budget("acme", tokens=100_000)
        r = _hold(acct, "acme/a", 1_000)
        # A writer that takes SQLite's own lock without tokenpilot's lock file (e.g. the sqlite3 shell).
        foreign = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sqlite3, sys\n"
                "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                "c.execute('BEGIN IMMEDIATE')\n"
                "print('held', flush=True)\n"
                "sys.stdin.readline()\n",
                str(path),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        entered = False
        try:
            assert foreign.stdout is not None and foreign.stdout.readline().strip() == "held"
            with pytest.raises(tp.StoreBusy), acct.batch(wait=False):
                entered = True
            with pytest.raises(tp.StoreError), acct.batch():
                entered = True
        finally:
            foreign.kill()
            foreign.wait(10)
        assert not entered and r.active
        with acct.batch():
            r.settle(output_tokens=4)
        assert acct.usage("acme").spent == 1_004 and acct.verify_counters() == []
