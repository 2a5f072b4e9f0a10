"""A real agent CLI through the proxy (scripts/smoke_agent.py), when its binary is on this machine.

Set TOKENPILOT_CLAUDE_CODE to the Claude Code executable (from the npm package) to run it; it needs
no network at test time (the fake upstream answers) and takes about five seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLAUDE = os.environ.get("TOKENPILOT_CLAUDE_CODE")
SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "smoke_agent.py"


@pytest.mark.skipif(not CLAUDE, reason="TOKENPILOT_CLAUDE_CODE is not set (the Claude Code binary)")
def test_claude_code_says_hello_through_the_proxy_and_every_call_is_in_the_ledger() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--claude", str(CLAUDE)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "SMOKE PASSED" in result.stdout
