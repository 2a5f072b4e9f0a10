"""The `count`, `models` and `--version` commands, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import tiktoken
from typer.testing import CliRunner

from tokenpilot import __version__
from tokenpilot._tokens._encodings import load_encoding
from tokenpilot.cli import app

runner = CliRunner()


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tokenpilot", *args], input=stdin, capture_output=True, text=True, check=False
    )


def make_tree(root: Path) -> dict[str, str]:
    files = {"a.py": "def main():\n    print('hi')\n", "docs/readme.md": "# Title\n\nSome words " * 30}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    (root / ".gitignore").write_text("*.log\n")
    (root / "debug.log").write_text("ignored " * 100)
    return files


def test_count_directory_totals_equal_tiktoken(tmp_path: Path) -> None:
    files = make_tree(tmp_path)
    result = run("count", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    encoding: tiktoken.Encoding = load_encoding("o200k_base")
    expected = {name: len(encoding.encode_ordinary(text)) for name, text in files.items()}
    expected[".gitignore"] = len(encoding.encode_ordinary("*.log\n"))
    got = {Path(f["path"]).relative_to(tmp_path).as_posix(): f["tokens"] for f in report["files"]}
    assert got == expected
    assert report["total"] == sum(expected.values())
    assert report["model"] == "gpt-4o" and report["tokenizer"] == "o200k_base" and report["exact"] is True
    assert [Path(s["path"]).name for s in report["skipped"]] == ["image.png"]
    tokens = [f["tokens"] for f in report["files"]]
    assert tokens == sorted(tokens, reverse=True)


def test_count_stdin_with_model() -> None:
    result = run("count", "-", "--model", "gpt-4", "--json", stdin="hello world")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["total"] == 2 and report["tokenizer"] == "cl100k_base"


def test_count_table_shows_total_and_skipped(tmp_path: Path) -> None:
    make_tree(tmp_path)
    result = runner.invoke(app, ["count", str(tmp_path)])
    assert result.exit_code == 0
    assert "tokens (gpt-4o, o200k_base, exact)" in result.output
    assert "skipped" in result.output and "image.png" in result.output


def test_missing_path_is_one_line_error_with_exit_2() -> None:
    result = run("count", "/no/such/path")
    assert result.returncode == 2
    assert "no such file or directory" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_bad_config_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "tokenpilot.toml").write_text('[models."gpt-4o"]\ncontext_window = -3\n')
    result = subprocess.run(
        [sys.executable, "-m", "tokenpilot", "models", "show", "gpt-4o"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2
    assert "tokenpilot.toml" in result.stderr and "models.gpt-4o.context_window" in result.stderr
    assert "Traceback" not in result.stderr


def test_models_show_json_and_env_override(monkeypatch: object) -> None:
    result = run("models", "show", "gpt-4o", "--json")
    shown = json.loads(result.stdout)
    assert shown["context_window"] == 128_000 and shown["sources"]["context_window"] == "data"
    keys = {
        "name",
        "provider",
        "context_window",
        "max_output_tokens",
        "input_per_mtok",
        "output_per_mtok",
        "cache_read_per_mtok",
        "cache_write_per_mtok",
        "price_known",
        "tokenizer",
        "exact",
        "sources",
    }
    assert set(shown) == keys
    env_result = subprocess.run(
        [sys.executable, "-m", "tokenpilot", "models", "show", "gpt-4o", "--json"],
        capture_output=True,
        text=True,
        check=False,
        env={"TOKENPILOT_MODEL_LIMIT_GPT_4O": "50000", "PATH": "/usr/bin:/bin"},
    )
    assert json.loads(env_result.stdout)["context_window"] == 50_000


def test_models_show_unknown_says_price_unknown() -> None:
    result = runner.invoke(app, ["models", "show", "acme-llm-7"])
    assert result.exit_code == 0
    assert "price unknown" in result.output


def test_models_list_filters_by_provider() -> None:
    result = runner.invoke(app, ["models", "list", "--provider", "anthropic", "--json"])
    rows = json.loads(result.output)
    assert rows and {r["provider"] for r in rows} == {"anthropic"}


def test_version() -> None:
    assert run("--version").stdout.strip() == f"tokenpilot {__version__}"


def test_usage_errors_exit_2_without_traceback() -> None:
    for args in (["models", "show"], ["count", "--model"], ["no-such-command"]):
        result = run(*args)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr, args
