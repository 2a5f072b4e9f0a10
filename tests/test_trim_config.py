"""`[trim]` settings, spill files and the `tokenpilot trim` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tokenpilot as tp
from tokenpilot._trim._spill import cleanup, default_spill_dir
from tokenpilot.cli import app

MODEL = "gpt-4o"
BIG = "\n".join(f"2024-05-01 12:00:{i % 60:02d} INFO worker {i} finished job" for i in range(3000)) + "\n"


def test_tool_budget_and_mode_come_from_project_config() -> None:
    Path("tokenpilot.toml").write_text('[trim.tools.pytest]\nbudget = 120\nmode = "head_tail"\n')
    result = tp.trim_output(BIG, None, tool="python -m pytest -x", model=MODEL, spill=False)
    assert result.budget == 120 and result.tokens <= 120
    assert result.mode == "head_tail"


def test_default_budget_per_format_when_nothing_is_configured() -> None:
    result = tp.trim_output(BIG, None, model=MODEL, spill=False)
    assert result.format == "log" and result.budget == 1500


def test_user_config_wins_over_project_config(isolated_config: Path) -> None:
    Path("tokenpilot.toml").write_text("[trim]\nbudget = 300\n")
    user = isolated_config / "tokenpilot" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text("[trim]\nbudget = 90\n")
    assert tp.trim_output(BIG, None, model=MODEL, spill=False).budget == 90


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[trim.tools.pytest]\nbudget = -5\n", "trim.tools.pytest.budget"),
        ('[trim.tools.pytest]\nmode = "clever"\n', "trim.tools.pytest.mode"),
        ("[trim.tools.pytest]\ncolour = 1\n", "trim.tools.pytest.colour"),
        ('[trim]\nspill = "yes"\n', "trim.spill"),
        ("[trim]\nbudgett = 5\n", "trim.budgett"),
    ],
)
def test_invalid_settings_raise_config_error_naming_file_and_key(toml: str, key: str) -> None:
    Path("tokenpilot.toml").write_text(toml)
    with pytest.raises(tp.ConfigError) as caught:
        tp.trim_output(BIG, 100, model=MODEL)
    assert "tokenpilot.toml" in str(caught.value) and repr(key) in str(caught.value)


def test_spill_file_holds_whole_output_and_is_named_in_the_text() -> None:
    result = tp.trim_output(BIG, 200, model=MODEL)
    assert result.spill_path is not None
    assert result.spill_path.parent == default_spill_dir()
    assert str(default_spill_dir()).startswith(os.environ["XDG_CACHE_HOME"])
    assert result.spill_path.read_text() == BIG
    assert str(result.spill_path) in result.text and result.tokens <= 200


def test_spill_is_content_addressed_and_written_once() -> None:
    first = tp.trim_output(BIG, 200, model=MODEL).spill_path
    second = tp.trim_output(BIG, 300, model=MODEL).spill_path
    assert first == second
    assert len(list(default_spill_dir().glob("*.txt"))) == 1


def test_spill_off_in_config_writes_nothing() -> None:
    Path("tokenpilot.toml").write_text("[trim]\nspill = false\n")
    assert tp.trim_output(BIG, 200, model=MODEL).spill_path is None
    assert not default_spill_dir().exists() or not list(default_spill_dir().glob("*.txt"))


def test_cleanup_removes_only_files_older_than_ttl(tmp_path: Path) -> None:
    old, fresh = tmp_path / "old.txt", tmp_path / "fresh.txt"
    old.write_text("a")
    fresh.write_text("b")
    week_ago = time.time() - 8 * 86400
    os.utime(old, (week_ago, week_ago))
    assert cleanup(tmp_path, ttl_days=7, force=True) == 1
    assert fresh.exists() and not old.exists()


def test_cli_trims_stdin_to_budget() -> None:
    done = CliRunner().invoke(app, ["trim", "--budget", "150", "--model", MODEL, "--no-spill"], input=BIG)
    assert done.exit_code == 0
    assert tp.count_tokens(done.stdout.rstrip("\n"), model=MODEL) <= 150
    assert "[… ×2,999 similar lines …]" in done.stdout


def test_cli_json_report_for_a_file(tmp_path: Path) -> None:
    path = tmp_path / "out.log"
    path.write_text(BIG)
    done = CliRunner().invoke(app, ["trim", str(path), "-b", "100", "--json", "--no-spill"])
    report = json.loads(done.stdout)
    assert report["tokens"] <= 100 and report["format"] == "log" and report["omitted"]["lines"] > 0


def test_cli_bad_mode_is_one_line_error_not_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tokenpilot", "trim", "--mode", "nope", "-b", "10"],
        input="x\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "unknown trim mode" in done.stderr


def test_stream_over_memory_limit_keeps_errors_from_the_middle(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from tokenpilot._trim import _stream

    monkeypatch.setattr(_stream, "IN_MEMORY_LIMIT", 4096)
    lines = [f"step {i} ok" for i in range(5000)]
    lines[2500] = "ERROR: disk quota exceeded on /dev/sda1"
    data = ("\n".join(lines) + "\n").encode()
    result = tp.trim_stream(io.BytesIO(data), 120, model=MODEL)
    assert result.tokens <= 120
    assert "ERROR: disk quota exceeded on /dev/sda1" in result.text
    assert result.lines_before == 5000
    shown = [x for x in result.text.split("\n") if not x.startswith("[")]
    assert len(shown) + result.omitted.lines == 5000  # every source line is shown or counted
    assert result.spill_path is not None and result.spill_path.read_bytes() == data


def test_zero_budget_in_tool_config_is_honoured_not_treated_as_unset() -> None:
    Path("tokenpilot.toml").write_text("[trim]\nbudget = 500\n[trim.tools.ls]\nbudget = 0\n")
    result = tp.trim_output(BIG, None, tool="ls", model=MODEL, spill=False)
    assert result.budget == 0 and result.text == ""
