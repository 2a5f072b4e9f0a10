"""`tokenpilot pack` on the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tokenpilot.cli import app

runner = CliRunner()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "src" / "parser.py").write_text(
        "def parse_header(line):\n    '''Parse one header.'''\n    return line\n"
    )
    (root / "src" / "other.py").write_text("def unrelated():\n    return 0\n")
    (root / "package-lock.json").write_text("{}")
    return root


def test_json_prints_the_manifest_with_the_documented_fields(repo: Path) -> None:
    result = runner.invoke(
        app, ["pack", str(repo), "--task", "parse_header breaks", "--budget", "2k", "--json", "--no-cache"]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert {
        "model",
        "tokenizer",
        "exact",
        "budget",
        "tokens",
        "task_tokens",
        "files",
        "excluded",
        "timing_ms",
    } <= set(manifest)
    assert manifest["budget"] == 2000 and manifest["tokens"] <= 2000
    assert manifest["files"][0]["path"] == "src/parser.py"
    assert set(manifest["files"][0]) == {"path", "tier", "tokens", "score"}
    assert all(f["tier"] in ("full", "outline", "path") for f in manifest["files"])
    assert {"path": "package-lock.json", "reason": "lock file"} in manifest["excluded"]


def test_output_and_manifest_files_are_written(repo: Path, tmp_path: Path) -> None:
    out, manifest = tmp_path / "ctx.md", tmp_path / "m.json"
    args = [
        "pack",
        str(repo),
        "-t",
        "parse_header",
        "-b",
        "1500",
        "-f",
        "markdown",
        "-o",
        str(out),
        "--manifest",
        str(manifest),
    ]
    result = runner.invoke(app, [*args, "--no-cache"])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("# Packed context")
    assert json.loads(manifest.read_text())["tokens"] <= 1500
    assert result.stdout == ""


def test_task_file_is_read(repo: Path, tmp_path: Path) -> None:
    task = tmp_path / "task.txt"
    task.write_text("parse_header breaks on empty lines")
    result = runner.invoke(app, ["pack", str(repo), "--task-file", str(task), "--budget", "1k", "--no-cache"])
    assert result.exit_code == 0, result.output
    assert "parse_header breaks on empty lines" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--budget", "1k"], 2, "exactly one of --task"),
        (["--task", "x", "--task-file", "t.txt", "--budget", "1k"], 2, "exactly one of --task"),
        (["--task", "x", "--budget", "lots"], 2, "not a token budget"),
        (["--task", "x " * 500, "--budget", "50"], 3, "over the budget"),
        (["--task", "x", "--budget", "1k", "--format", "html"], 2, "unknown pack format"),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(repo: Path, args: list[str], code: int, message: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "tokenpilot", "pack", str(repo), "--no-cache", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == code
    assert message in run.stderr
    assert "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
