"""Where the proxy settles on SQLite: on the loop when it is free, on the pool when it is saturated."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import tokenpilot as tp
from tokenpilot._serve.accounting import BUSY_LOOP_LAG, SETTLE_DELAY, Accountant


def _settle_later(accountant: Accountant, reservation: tp.Reservation, threads: list[str]) -> None:
    def work() -> None:
        threads.append(threading.current_thread().name)
        reservation.settle(output_tokens=7)

    accountant.later(work)


async def _run(path: Path, *, busy: bool) -> tuple[list[str], tp.Ledger]:
    ledger = tp.open_ledger(str(path))
    ledger.set_budget("team", tokens=100_000)
    accountant = Accountant(ledger)
    held = [
        ledger.reserve("team/a", model="gpt-4o", input_tokens=100, max_output_tokens=50) for _ in range(3)
    ]
    threads: list[str] = []
    for reservation in held:
        _settle_later(accountant, reservation, threads)
    assert accountant.pending == 3 and threads == []  # queued, not yet settled
    if busy:
        time.sleep(SETTLE_DELAY + BUSY_LOOP_LAG + 0.02)  # the loop is held: the flush will run late
    deadline = time.monotonic() + 10
    while accountant.pending and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    await asyncio.to_thread(accountant.drain)
    return threads, ledger


def test_a_free_loop_settles_a_turn_of_calls_itself_in_one_batch(tmp_path: Path) -> None:
    threads, ledger = asyncio.run(_run(tmp_path / "ledger.db", busy=False))
    with ledger:
        assert threads == [threading.main_thread().name] * 3
        assert [r.output_tokens for r in ledger.records()] == [7, 7, 7]
        assert ledger.active_reservations() == 0 and ledger.verify_counters() == []


def test_a_saturated_loop_hands_its_batch_to_the_pool(tmp_path: Path) -> None:
    threads, ledger = asyncio.run(_run(tmp_path / "ledger.db", busy=True))
    with ledger:
        assert len(threads) == 3 and len(set(threads)) == 1
        assert threads[0] != threading.main_thread().name and threads[0].startswith("tokenpilot-settle")
        assert [r.output_tokens for r in ledger.records()] == [7, 7, 7]
        assert ledger.active_reservations() == 0 and ledger.verify_counters() == []


def test_a_settlement_being_written_still_counts_as_pending(tmp_path: Path) -> None:
    # wait_settled (and shutdown) read `pending` from another thread: 0 must mean written.
    async def run() -> list[int]:
        ledger = tp.open_ledger(str(tmp_path / "ledger.db"))
        ledger.set_budget("team", tokens=100_000)
        accountant = Accountant(ledger)
        reservation = ledger.reserve("team/a", model="gpt-4o", input_tokens=100, max_output_tokens=50)
        seen: list[int] = []

        def work() -> None:
            seen.append(accountant.pending)  # read while this very settlement is being written
            reservation.settle(output_tokens=7)

        accountant.later(work)
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        await asyncio.to_thread(accountant.drain)
        seen.append(accountant.pending)
        ledger.close()
        return seen

    during, after = asyncio.run(run())
    assert during >= 1 and after == 0
