"""Smoke test: OpenHands (its CLI, headless) through `tokenpilot serve` against the fake upstream.

    /root/.pyenv/versions/3.12.1/bin/python -m venv /tmp/oh-venv     # OpenHands needs Python 3.12+
    /tmp/oh-venv/bin/pip install 'openhands==1.16.0'                  # its own venv: ~780 MB, ~3 min
    .venv/bin/python scripts/smoke_openhands.py --openhands /tmp/oh-venv/bin/openhands \\
        [--mode observe|enforce] [--model openai/gpt-4o|openai/gpt-5.1|anthropic/claude-sonnet-4-5]

Starts the fake provider (tests/fake_upstream.py) with a tool-call script — first a `terminal` call
that writes hello.txt, then `finish` — and `tokenpilot serve` on 127.0.0.1, then runs
`openhands --headless --override-with-envs -t "..."` with LLM_BASE_URL pointing at the proxy and a
fake key. OpenHands runs the command itself (its local workspace: no Docker). Checks that it exited
0, wrote the file, finished with the scripted message, and that every model call it made is in the
ledger with exactly the fake's usage and no reservation left. gpt-4o goes through chat completions,
gpt-5.* through the Responses API, claude-* through Anthropic messages. Prints what OpenHands sent.
Not in CI (the install is large). Nothing leaves 127.0.0.1 but OpenHands' own attempt to clone its
public skills from GitHub, which fails offline and is harmless.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))

from agent_through_proxy import run_agent, serve_on  # noqa: E402
from fake_upstream import FakeUpstream  # noqa: E402
from serve_support import recorded_tokens, reported_tokens  # noqa: E402

COMMAND = "echo hello-from-openhands > hello.txt"
SCRIPT = (
    ("terminal", {"command": COMMAND, "security_risk": "LOW", "summary": "write hello.txt"}),
    ("finish", {"message": "wrote hello.txt"}),
)


SHOWN = ("model", "stream", "stream_options", "max_tokens", "max_completion_tokens", "max_output_tokens")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--openhands", required=True, help="the OpenHands CLI executable (openhands)")
    parser.add_argument("--mode", default="enforce", choices=["observe", "enforce"])
    parser.add_argument("--model", default="openai/gpt-4o", help="LiteLLM model name OpenHands is given")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()

    import tokenpilot as tp

    anthropic = args.model.startswith("anthropic/")
    with tempfile.TemporaryDirectory(prefix="tp-smoke-oh-") as tmp, FakeUpstream(tool_calls=SCRIPT) as fake:
        work = Path(tmp)
        try:
            with serve_on(fake, work, args.mode) as (port, db):
                home, project = work / "home", work / "project"
                home.mkdir()
                project.mkdir()
                agent_env = {
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "HOME": str(home),
                    "LLM_MODEL": args.model,
                    "LLM_API_KEY": "sk-fake-smoke-key",
                    # LiteLLM posts to {base}/v1/messages (Anthropic), {base}/chat/completions (OpenAI).
                    "LLM_BASE_URL": f"http://127.0.0.1:{port}" + ("" if anthropic else "/v1"),
                    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # else LiteLLM fetches its price list from GitHub
                    "OPENHANDS_SUPPRESS_BANNER": "1",
                }
                result, took = run_agent(
                    [args.openhands, "--headless", "--override-with-envs", "-t", "write hello to hello.txt"],
                    agent_env,
                    project,
                    args.timeout,
                )
        except RuntimeError:
            return 1
        ledger = tp.open_ledger(db)
        records = ledger.records()
        calls = [r for r in fake.received if r.method == "POST" and r.path.startswith("/v1/")]
        sent = [
            {
                "path": r.path,
                "bytes": len(r.body),
                **{k: v for k, v in json.loads(r.body).items() if k in SHOWN},
                "tools": [
                    t.get("name") or t.get("function", {}).get("name") for t in json.loads(r.body)["tools"]
                ],
                "headers": sorted(k.decode() for k, _ in r.headers if not k.startswith(b"x-stainless")),
            }
            for r in calls
        ]
        usage_matches = len(records) == len(fake.reported) and all(
            got.usage is not None and recorded_tokens(record) == reported_tokens(got.api, got.usage)
            for record, got in zip(records, fake.reported, strict=False)
        )
        written = project / "hello.txt"
        print(
            json.dumps(
                {
                    "exit": result.returncode,
                    "seconds": round(took, 1),
                    "stdout_tail": re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)[-300:],
                    "upstream_received": sent,
                    "ledger": [
                        (
                            r.model,
                            r.status,
                            r.input_tokens,
                            r.output_tokens,
                            r.max_tokens,
                            r.finish_reason,
                            r.usage_estimated,
                        )
                        for r in records
                    ],
                    "ledger_usage_equals_fakes": usage_matches,
                    "active_reservations": ledger.active_reservations(),
                    "hello.txt": written.read_text() if written.exists() else None,
                    "serve_log": (work / "serve.log").read_text().splitlines()[-4:],
                },
                indent=1,
            )
        )
        ok = (
            result.returncode == 0
            and "wrote hello.txt" in result.stdout
            and written.exists()
            and written.read_text().strip() == "hello-from-openhands"
            and len(calls) == len(SCRIPT)
            and usage_matches
            and ledger.active_reservations() == 0
        )
        print("SMOKE", "PASSED" if ok else "FAILED")
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
