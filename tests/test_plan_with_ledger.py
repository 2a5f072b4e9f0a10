"""`plan` and the real ledger together: learned max_tokens from records, attempts recorded."""

from __future__ import annotations

from pathlib import Path

import tokenpilot as tp

BODY = {
    "model": "gpt-4o",
    "messages": [{"role": "user", "content": "Write a function that parses ISO dates, with tests."}],
}


def test_max_tokens_is_learned_from_ledger_records(tmp_path: Path) -> None:
    acct = tp.open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    first = tp.plan_call(BODY, phase="build", task_type="code_generation", ledger=acct)
    assert first.max_tokens_source == "table"
    for i in range(30):
        acct.record_call(
            "acme/app/build",
            model=first.model,
            input_tokens=500,
            output_tokens=1_000 + 10 * i,
            max_tokens=first.max_tokens,
            finish_reason="stop",
            phase="build",
            task_type="code_generation",
        )
    learned = tp.plan_call(BODY, phase="build", task_type="code_generation", ledger=acct)
    assert learned.max_tokens_source == "learned"
    # p90 of 1,000..1,290 is 1,260 (nearest rank); × the 1.2 margin
    assert learned.max_tokens == 1_512
    assert any("learned" in reason.why for reason in learned.reasons)


def test_truncated_attempt_is_recorded_and_escalated(tmp_path: Path) -> None:
    acct = tp.open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    plan = tp.plan_call(BODY, task_type="code_generation", phase="build")
    response = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": plan.model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "def parse("}, "finish_reason": "length"}
        ],
        "usage": {
            "prompt_tokens": plan.input_tokens,
            "completion_tokens": plan.max_tokens,
            "total_tokens": plan.input_tokens + plan.max_tokens,
        },
    }
    retry = tp.next_attempt(plan, response, ledger=acct, scope="acme/app/build")
    assert retry is not None and retry.attempt == 2 and retry.max_tokens > plan.max_tokens
    (record,) = acct.records(scope="acme/app")
    assert record.truncated and record.attempt == 1 and record.finish_reason == "length"
    assert record.task_type == "code_generation" and record.phase == "build"
    assert [a.kind for a in acct.alerts()] == ["truncation"]


def test_plan_cli_learns_from_the_ledger_given_by_db(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from tokenpilot.cli import app

    db = tmp_path / "ledger.db"
    with tp.open_ledger(f"sqlite:///{db}") as acct:
        for i in range(25):
            acct.record_call(
                "acme/app",
                model="gpt-4o",
                input_tokens=100,
                output_tokens=200 + i,
                finish_reason="stop",
                phase="build",
                task_type="code_generation",
            )
    (tmp_path / "req.json").write_text(json.dumps(BODY))
    args = [
        "plan",
        str(tmp_path / "req.json"),
        "--phase",
        "build",
        "--task-type",
        "code_generation",
        "--json",
    ]
    without = json.loads(CliRunner().invoke(app, args).output)
    learned = json.loads(CliRunner().invoke(app, [*args, "--db", f"sqlite:///{db}"]).output)
    assert without["max_tokens"] != learned["max_tokens"]
    assert learned["max_tokens"] == 267  # p90 of 200..224 (nearest rank 23: 222) × 1.2, rounded up
