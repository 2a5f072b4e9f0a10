"""Smoke test: one real agent CLI (Claude Code) through `tokenpilot serve` against the fake upstream.

    npm install --prefix /tmp/cc @anthropic-ai/claude-code     # once: the package ships the binary
    CLAUDE=/tmp/cc/node_modules/@anthropic-ai/claude-code-linux-x64/claude
    .venv/bin/python scripts/smoke_agent.py --claude $CLAUDE

Starts the fake provider (tests/fake_upstream.py) and `tokenpilot serve` on 127.0.0.1, runs
`claude -p "say hello"` with ANTHROPIC_BASE_URL pointing at the proxy and a fake key, and checks
that the agent printed the fake's reply, exited 0, and that every call it made is in the ledger.
It prints what the agent sent (paths, anthropic-beta values, body sizes), so the fixtures in
tests/data/serve can be checked against a real run. Nothing leaves 127.0.0.1; it stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fake_upstream import FakeUpstream  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claude", required=True, help="the Claude Code executable")
    parser.add_argument("--mode", default="enforce", choices=["observe", "enforce"])
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    import httpx

    import tokenpilot as tp

    with tempfile.TemporaryDirectory(prefix="tp-smoke-") as tmp, FakeUpstream() as fake:
        work = Path(tmp)
        db = str(work / "ledger.db")
        port = fake.port + 1 if fake.port < 65000 else fake.port - 1
        env = dict(os.environ, XDG_CONFIG_HOME=tmp, XDG_DATA_HOME=tmp)
        serve = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tokenpilot",
                "serve",
                "--port",
                str(port),
                "--mode",
                args.mode,
                "--db",
                db,
                "--anthropic-base",
                fake.base_url,
                "--openai-base",
                fake.base_url,
            ],
            stderr=open(work / "serve.log", "wb"),  # noqa: SIM115
            env=env,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.head(f"http://127.0.0.1:{port}/", timeout=1)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or serve.poll() is not None:
                        print((work / "serve.log").read_text(), file=sys.stderr)
                        return 1
                    time.sleep(0.2)
            home = work / "home"
            home.mkdir()
            agent_env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(home),
                "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}",
                "ANTHROPIC_API_KEY": "sk-ant-fake-smoke-key",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "DISABLE_TELEMETRY": "1",
                "DISABLE_AUTOUPDATER": "1",
                "DISABLE_ERROR_REPORTING": "1",
            }
            started = time.monotonic()
            result = subprocess.run(
                [args.claude, "-p", "say hello"],
                env=agent_env,
                cwd=work,
                capture_output=True,
                text=True,
                timeout=args.timeout,
            )
            took = time.monotonic() - started
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.wait(30)
        ledger = tp.open_ledger(db)
        records = ledger.records()
        sent = [
            {
                "method": r.method,
                "path": r.path,
                "bytes": len(r.body),
                "anthropic_beta": len((r.header("anthropic-beta") or "").split(","))
                if r.header("anthropic-beta")
                else 0,
                "session_header": r.header("x-claude-code-session-id") is not None,
                "stream": json.loads(r.body).get("stream") if r.body.startswith(b"{") else None,
            }
            for r in fake.received
        ]
        print(
            json.dumps(
                {
                    "exit": result.returncode,
                    "seconds": round(took, 1),
                    "stdout": result.stdout[-300:],
                    "stderr": result.stderr[-300:],
                    "upstream_received": sent,
                    "ledger": [
                        (r.model, r.status, r.input_tokens, r.output_tokens, r.session) for r in records
                    ],
                    "active_reservations": ledger.active_reservations(),
                },
                indent=1,
            )
        )
        ok = (
            result.returncode == 0
            and "tok0" in result.stdout
            and records
            and ledger.active_reservations() == 0
        )
        model_calls = [s for s in sent if s["path"] == "/v1/messages"]
        ok = ok and len(records) == len(model_calls)
        print("SMOKE", "PASSED" if ok else "FAILED")
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
