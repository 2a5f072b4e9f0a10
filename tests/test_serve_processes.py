"""`tokenpilot serve` as real processes: two proxies on one PostgreSQL ledger never overspend, and
SIGTERM in the middle of a stream settles the call (finished in the grace period, or cut and
settled as cancelled) with no reservation left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import tokenpilot as tp
from fake_upstream import FakeUpstream
from ledger_support import require_pg, store_url
from serve_support import HTTP, fake, free_port, upstream

MESSAGES = {"model": "claude-sonnet-4-6", "max_tokens": 2000, "messages": [{"role": "user", "content": "hi"}]}


@contextmanager
def serve_process(
    fake_url: str, db: str, tmp: Path, *extra: str, config: str = ""
) -> Iterator[tuple[str, Any]]:
    port = free_port()
    config_file = tmp / f"serve-{port}.toml"
    config_file.write_text(f"[serve]\n{config}")
    command = [
        sys.executable, "-m", "tokenpilot", "serve", "--port", str(port), "--db", db, "--mode", "enforce",
        "--openai-base", fake_url, "--anthropic-base", fake_url, "--config", str(config_file), *extra,
    ]  # fmt: skip
    log = open(tmp / f"serve-{port}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if HTTP.head(base + "/", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((tmp / f"serve-{port}.log").read_text())
        time.sleep(0.1)
    try:
        yield base, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
        log.close()


@pytest.mark.slow
@pytest.mark.postgres
def test_two_proxy_processes_on_one_postgresql_ledger_never_overspend(
    upstream: FakeUpstream,
    store_url: str,
    tmp_path: Path,
) -> None:
    require_pg()
    if not store_url.startswith("postgresql"):
        pytest.skip("this one is about a shared server")
    ledger = tp.open_ledger(store_url)
    limit = 20_000
    ledger.set_budget("race", tokens=limit)
    statuses: list[int] = []
    lock = threading.Lock()
    headers = {"x-fake-output-tokens": "1500", "x-tokenpilot-scope": "race/agent"}
    with (
        serve_process(upstream.base_url, store_url, tmp_path) as (a, _),
        serve_process(upstream.base_url, store_url, tmp_path) as (b, _),
    ):

        def client(base: str) -> None:
            with httpx.Client(base_url=base, timeout=60) as http:
                for _ in range(5):
                    reply = http.post("/v1/messages", json={**MESSAGES, "stream": True}, headers=headers)
                    with lock:
                        statuses.append(reply.status_code)

        threads = [threading.Thread(target=client, args=(base,)) for base in (a, b) * 4]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert statuses.count(200) >= 5 and statuses.count(429) >= 1
    assert ledger.usage("race").spent <= limit
    assert ledger.active_reservations() == 0
    ledger.close()


@pytest.mark.slow
@pytest.mark.parametrize(("grace", "status"), [(10, "ok"), (1, "cancelled")])
def test_sigterm_mid_stream_settles_the_call(
    upstream: FakeUpstream, tmp_path: Path, grace: int, status: str
) -> None:
    db = str(tmp_path / "ledger.db")
    headers = {"x-fake-chunks": "40", "x-fake-delay": "0.075"}  # a 3 s stream
    chunks: list[bytes] = []
    with serve_process(upstream.base_url, db, tmp_path, config=f"shutdown_grace = {grace}\n") as (
        base,
        process,
    ):
        with httpx.stream(
            "POST", base + "/v1/messages", json={**MESSAGES, "stream": True}, headers=headers, timeout=60
        ) as r:
            try:
                for chunk in r.iter_raw():
                    chunks.append(chunk)
                    if len(chunks) == 5:
                        process.send_signal(signal.SIGTERM)
            except httpx.HTTPError:
                pass  # cut at the end of the grace period
        # uvicorn re-raises the signal once it has shut down cleanly, so the process ends by SIGTERM.
        assert process.wait(30) in (0, -signal.SIGTERM)
    assert "every call settled" in next(tmp_path.glob("serve-*.log")).read_text()
    ledger = tp.open_ledger(db)
    [record] = ledger.records()
    assert record.status == status
    assert record.input_tokens > 0 and record.output_tokens > 0
    assert ledger.active_reservations() == 0
    ledger.close()


@pytest.mark.slow
def test_two_workers_share_the_port_and_sigterm_settles_every_call(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    db = str(tmp_path / "ledger.db")
    headers = {"x-fake-chunks": "30", "x-fake-delay": "0.05"}  # 1.5 s streams
    started = threading.Barrier(5)
    results: list[int] = []

    def stream(base: str) -> None:
        with httpx.stream(
            "POST", base + "/v1/messages", json={**MESSAGES, "stream": True}, headers=headers, timeout=60
        ) as r:
            for i, _ in enumerate(r.iter_raw()):
                if i == 0:
                    started.wait(10)
            results.append(r.status_code)

    with serve_process(upstream.base_url, db, tmp_path, "--workers", "2") as (base, process):
        for _ in range(6):  # whole calls first: either worker may take each
            answer = HTTP.post(base + "/v1/messages", json=MESSAGES)
            assert answer.status_code == 200, answer.text
        threads = [threading.Thread(target=stream, args=(base,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        started.wait(10)
        process.send_signal(signal.SIGTERM)  # every stream is under way: each finishes in the grace
        for thread in threads:
            thread.join(30)
        assert process.wait(30) == 0
    log = next(tmp_path.glob("serve-*.log")).read_text()
    assert log.count("every call settled") == 2  # one line per worker
    assert results == [200] * 4
    ledger = tp.open_ledger(db)
    records = ledger.records()
    assert len(records) == 10 and {r.status for r in records} == {"ok"}
    assert ledger.active_reservations() == 0
    ledger.close()


def test_workers_below_one_is_one_clear_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tokenpilot", "serve", "--workers", "0"], capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "--workers must be at least 1" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_sigterm_while_the_workers_start_stops_them_all(upstream: FakeUpstream, tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "tokenpilot", "serve", "--port", str(free_port()),
        "--db", str(tmp_path / "l.db"), "--openai-base", upstream.base_url, "--workers", "2",
    ]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE)
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    deadline = time.monotonic() + 30
    while len(children.read_text().split()) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    workers = [int(pid) for pid in children.read_text().split()]
    assert len(workers) == 2
    process.send_signal(signal.SIGTERM)  # the workers are still starting: none may be left running
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


def test_a_relayed_answer_carries_the_upstreams_date_and_server_once_and_a_local_one_a_date(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    with serve_process(upstream.base_url, str(tmp_path / "ledger.db"), tmp_path) as (base, _):
        relayed = HTTP.post(base + "/v1/messages", json=MESSAGES)
        refused = HTTP.post(base + "/v1/messages", content=b"{not json")
    names = [k for k, _ in relayed.headers.raw]
    assert relayed.status_code == 200 and names.count(b"date") == 1 and names.count(b"server") == 1
    assert relayed.headers["server"] == "uvicorn"  # the fake's own, passed on
    assert refused.status_code == 400 and [k for k, _ in refused.headers.raw].count(b"date") == 1
    assert b"server" not in [k for k, _ in refused.headers.raw]
