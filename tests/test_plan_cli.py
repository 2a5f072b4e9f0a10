"""`tokenpilot plan` and `tokenpilot cost compare`, in-process and as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from plan_support import DATA
from tokenpilot.cli import app

runner = CliRunner()


def test_plan_json_reports_every_choice() -> None:
    result = runner.invoke(
        app, ["plan", str(DATA / "anthropic_request_review.json"), "--json", "--phase", "review"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["model"] == "claude-opus-4-5" and data["task_type"] == "review" and data["phase"] == "review"
    assert data["input_exact"] is False
    assert {r["choice"] for r in data["reasons"]} >= {
        "task_type",
        "model",
        "max_tokens",
        "prompt_tier",
        "output_mode",
    }


def test_plan_table_for_people_with_model_override() -> None:
    result = runner.invoke(app, ["plan", str(DATA / "openai_request_plain.json"), "--model", "gpt-4.1"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("gpt-4.1: ")
    assert "max_tokens" in result.stdout and "explanation" in result.stdout


def test_plan_of_a_prompt_file_and_written_files() -> None:
    Path("prompt.txt").write_text("Create a CLI entry point", encoding="utf-8")
    result = runner.invoke(app, ["plan", "prompt.txt", "--write", "cli.py", "--json", "-m", "gpt-4o"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["output_mode"] == "full_file" and data["output"]["files"][0]["action"] == "create"


def test_plan_exits_3_when_the_input_must_be_compacted() -> None:
    body = {"model": "gpt-4", "messages": [{"role": "user", "content": "word " * 7900}]}
    Path("big.json").write_text(json.dumps(body), encoding="utf-8")
    result = runner.invoke(app, ["plan", "big.json"])
    assert result.exit_code == 3
    assert "must shrink by" in result.stderr


def test_cost_compare_table_and_json() -> None:
    Path("work.csv").write_text(
        "phase,input_tokens,output_tokens,calls\nexplore,1000000,100000,50\n", encoding="utf-8"
    )
    table = runner.invoke(
        app, ["cost", "compare", "--workload", "work.csv", "-m", "gpt-4o", "-m", "nobody-knows"]
    )
    assert table.exit_code == 0, table.output
    assert "routed" in table.stdout and "unknown" in table.stdout and "$3.5000" in table.stdout
    data = json.loads(runner.invoke(app, ["cost", "compare", "--workload", "work.csv", "--json"]).stdout)
    assert [p["policy"] for p in data["policies"]] == [
        "single:gpt-4o-mini",
        "single:gpt-4o",
        "single:gpt-4.1",
        "routed",
    ]


def test_errors_are_one_line_without_traceback() -> None:
    Path("bad.json").write_text("{not json", encoding="utf-8")
    for args in (
        ["plan", "bad.json"],
        ["plan", "missing.json"],
        ["cost", "compare", "--workload", "nope.csv"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "tokenpilot", *args], capture_output=True, text=True, check=False
        )
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_bad_config_is_one_line_with_exit_code_2() -> None:
    Path("tokenpilot.toml").write_text("[plan]\nsafety_margin = 'big'\n", encoding="utf-8")
    Path("p.txt").write_text("hi", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "tokenpilot", "plan", "p.txt"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "tokenpilot.toml" in done.stderr and "'plan.safety_margin'" in done.stderr
