"""The proxy's event loop never waits for a SQLite ledger that another process is writing."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

import tokenpilot as tp
from fake_upstream import FakeUpstream
from serve_support import HTTP, fake, running_proxy, settings_for, upstream

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Summarise the design document."}]}
COUNT = {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "How long is this?"}]}
HOLD_LOCK = (
    "import fcntl, os, sys\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "print('held', flush=True)\n"
    "sys.stdin.readline()\n"
)


@contextlib.contextmanager
def _lock_held(path: Path) -> Iterator[Callable[[], None]]:
    """Another process holds the ledger's lock file until the yielded `release()` is called."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, f"{path}.lock"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )

    def release() -> None:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()

    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield release
    finally:
        if holder.poll() is None:
            holder.kill()


def test_a_locked_sqlite_ledger_delays_only_the_calls_that_reserve(
    upstream: FakeUpstream,
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.db"
    # A loop that waited for the lock would wait this long: far past the bound asserted below.
    with tp.open_ledger(str(path), busy_timeout=60) as ledger:
        ledger.set_budget("team", tokens=100_000)
        with (
            _lock_held(path) as release,
            running_proxy(settings_for(upstream.base_url, mode="enforce"), ledger) as proxy,
        ):
            # The first count loads the model's tokenizer (seconds on a loaded machine): not timed.
            assert HTTP.post(proxy.base_url + "/v1/messages/count_tokens", json=COUNT).status_code == 200
            replies: list[httpx.Response] = []
            call = threading.Thread(
                target=lambda: replies.append(
                    HTTP.post(
                        proxy.base_url + "/v1/chat/completions",
                        json=CHAT,
                        headers={"x-tokenpilot-scope": "team/a"},
                    )
                )
            )
            call.start()
            time.sleep(0.5)  # the call is now waiting for the ledger's lock
            started = time.monotonic()
            counted = HTTP.post(proxy.base_url + "/v1/messages/count_tokens", json=COUNT)
            waited = time.monotonic() - started
            # The loop was free while the call waited: answered in far less than the lock's 60 s
            # (the bound leaves room for a loaded machine; a blocked loop would answer only after).
            assert counted.status_code == 200 and waited < 5.0
            assert call.is_alive() and not replies
            release()
            call.join(30)
            assert replies and replies[0].status_code == 200
            proxy.wait_settled()
        assert [r.status for r in ledger.records()] == ["ok"]
        assert ledger.active_reservations() == 0 and ledger.verify_counters() == []


def test_a_settlement_that_finds_the_file_locked_waits_on_the_pool_while_the_loop_serves(
    upstream: FakeUpstream,
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.db"
    with tp.open_ledger(str(path), busy_timeout=60) as ledger:
        ledger.set_budget("team", tokens=100_000)
        stream = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
        slow = {"x-tokenpilot-scope": "team/a", "x-fake-chunks": "10", "x-fake-delay": "0.1"}
        with running_proxy(settings_for(upstream.base_url, mode="enforce"), ledger) as proxy:
            assert HTTP.post(proxy.base_url + "/v1/messages/count_tokens", json=COUNT).status_code == 200
            replies: list[httpx.Response] = []
            call = threading.Thread(
                target=lambda: replies.append(
                    HTTP.post(proxy.base_url + "/v1/chat/completions", json=stream, headers=slow)
                )
            )
            call.start()
            deadline = time.monotonic() + 30
            while ledger.active_reservations() == 0:  # reserved: now the stream runs for ~1 s
                assert time.monotonic() < deadline
                time.sleep(0.01)
            with _lock_held(path) as release:
                call.join(30)
                assert replies and replies[0].status_code == 200 and b"[DONE]" in replies[0].content
                time.sleep(0.3)  # the settlement found the file locked and waits on the pool
                started = time.monotonic()
                counted = HTTP.post(proxy.base_url + "/v1/messages/count_tokens", json=COUNT)
                assert counted.status_code == 200 and time.monotonic() - started < 5.0  # the loop serves
                assert ledger.records() == [] and proxy.proxy.accountant.pending == 1
                release()
                proxy.wait_settled()
        assert [(r.status, r.output_tokens) for r in ledger.records()] == [("ok", 10)]
        assert ledger.active_reservations() == 0 and ledger.verify_counters() == []
