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
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))

from agent_through_proxy import run_agent, serve_on  # noqa: E402
from fake_upstream import FakeUpstream  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claude", required=True, help="the Claude Code executable")
    parser.add_argument("--mode", default="enforce", choices=["observe", "enforce"])
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()

    import tokenpilot as tp

    with tempfile.TemporaryDirectory(prefix="tp-smoke-") as tmp, FakeUpstream() as fake:
        work = Path(tmp)
        try:
            with serve_on(fake, work, args.mode) as (port, db):
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
                result, took = run_agent([args.claude, "-p", "say hello"], agent_env, work, args.timeout)
        except RuntimeError:
            return 1
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
