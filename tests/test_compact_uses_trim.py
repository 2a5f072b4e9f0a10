"""Clamping an oversized tool output keeps what trim keeps: the failures, not just head and tail."""

from __future__ import annotations

import json
from pathlib import Path

import tokenpilot as tp

PYTEST_RUN = Path(__file__).parent.parent / "bench/fixtures/trim/pytest_verbose.txt"


def test_clamped_pytest_output_keeps_every_failure_and_its_assertion() -> None:
    output = PYTEST_RUN.read_text()
    messages = [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": "Make the test suite pass."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "execute_bash", "arguments": json.dumps({"command": "pytest -v"})},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": output},
    ]
    assert tp.count_tokens(output) > 2_000
    result = tp.compact(messages, model="gpt-4o", budget=1_000_000, clamp=500, clamp_index=0)
    clamped = result.messages[-1]["content"]
    assert tp.count_tokens(clamped) <= 500
    failed = [line.split(" - ")[0] for line in output.splitlines() if line.startswith("FAILED ")]
    assert failed and all(test_id in clamped for test_id in failed)
    # Each failure's assertion lines sit mid-output, where a head-and-tail cut loses half of them.
    assertions = [line for line in output.splitlines() if line.startswith("E   ")]
    assert assertions and all(line in clamped for line in assertions)
    assert not tp.validate(result.messages, "openai")
