"""`tokenpilot compact` on files and stdin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import tokenpilot as tp
from conversations import bash_run
from tokenpilot.cli import app

runner = CliRunner()


def _run_file(tmp_path: Path) -> Path:
    messages = bash_run(30, lambda i: f"output {i}\n" * 80)
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"model": "gpt-4o", "messages": messages}), encoding="utf-8")
    return path


def test_cli_prints_the_compacted_body_within_budget(tmp_path: Path) -> None:
    path = _run_file(tmp_path)
    report = tmp_path / "report.json"
    result = runner.invoke(app, ["compact", str(path), "--budget", "6000", "--report", str(report)])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["model"] == "gpt-4o" and tp.count_messages(body) <= 6000
    assert tp.validate(body) == ()
    assert json.loads(report.read_text())["tokens_after"] == tp.count_messages(body)


def test_cli_reads_stdin_and_prints_json_report(tmp_path: Path) -> None:
    text = _run_file(tmp_path).read_text()
    result = runner.invoke(
        app, ["compact", "-", "--trigger", "0.05", "--target", "0.04", "--json"], input=text
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["report"]["compacted"] is True and out["report"]["actions"]


def test_cli_without_budget_is_a_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["compact", str(_run_file(tmp_path))])
    assert result.exit_code != 0
    assert isinstance(result.exception, tp.InputError)


def test_cli_bad_json_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{nope", encoding="utf-8")
    result = runner.invoke(app, ["compact", str(path), "--budget", "100"])
    assert isinstance(result.exception, tp.InputError)


def test_cli_report_to_a_missing_folder_is_an_input_error(tmp_path: Path) -> None:
    path = _run_file(tmp_path)
    result = runner.invoke(
        app, ["compact", str(path), "--budget", "6000", "--report", str(tmp_path / "no" / "r.json")]
    )
    assert isinstance(result.exception, tp.InputError)


def test_cli_as_a_process_prints_one_error_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "tokenpilot", "compact", str(tmp_path / "missing.json"), "--budget", "10"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: no such file: {tmp_path / 'missing.json'}"]


def test_forcing_openai_on_an_anthropic_body_never_prints_an_orphan_result(tmp_path: Path) -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "system": "be brief",
        "messages": [
            {"role": "user", "content": "fix the bug"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "t1",
                        "name": "bash",
                        "input": {"command": "echo " + "word " * 3000},
                    }
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "done"}]},
            {"role": "user", "content": "now more"},
        ],
    }
    path = tmp_path / "anthropic.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "tokenpilot", "compact", str(path), "--format", "openai", "--budget", "800"],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and done.stdout == ""
    assert "not valid for anthropic" in done.stderr and len(done.stderr.splitlines()) == 1
