"""What the smoke scripts share: `tokenpilot serve` on a fake upstream, and one agent run through it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def serve_on(fake: Any, work: Path, mode: str) -> Iterator[tuple[int, str]]:
    """`tokenpilot serve` in `mode` on `fake` for both APIs: yields (its port, its ledger's path).

    Raises RuntimeError (its log printed) when it does not answer within 30 s; stops it with SIGTERM.
    """
    import httpx

    db = str(work / "ledger.db")
    port = fake.port + 1 if fake.port < 65000 else fake.port - 1
    env = dict(os.environ, XDG_CONFIG_HOME=str(work), XDG_DATA_HOME=str(work))
    serve = subprocess.Popen(
        [sys.executable, "-m", "tokenpilot", "serve", "--port", str(port), "--mode", mode,
         "--db", db, "--anthropic-base", fake.base_url, "--openai-base", fake.base_url],
        stderr=open(work / "serve.log", "wb"),  # noqa: SIM115
        env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.head(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or serve.poll() is not None:
                    print((work / "serve.log").read_text(), file=sys.stderr)
                    raise RuntimeError("tokenpilot serve did not start") from None
                time.sleep(0.2)
        yield port, db
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)


def run_agent(
    command: list[str], env: dict[str, str], cwd: Path, timeout: float
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the agent to its end: (its result, seconds it took)."""
    started = time.monotonic()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return result, time.monotonic() - started
