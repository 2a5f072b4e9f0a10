"""The CLI's rough edges, as a newcomer meets them: one budget syntax, one-line errors, clear refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tokenpilot as tp

COMMANDS = [
    ["pack"], ["compact"], ["trim"], ["plan"], ["count"], ["report"], ["cost", "compare"],
    ["budget", "set"], ["budget", "show"], ["budget", "rm"], ["ledger", "import"], ["ledger", "export"],
    ["ledger", "tail"], ["ledger", "alerts"], ["ledger", "ack"], ["models", "list"], ["models", "show"],
]  # fmt: skip


def run(
    *args: str, stdin: str | bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb"}
    done = subprocess.run(
        [sys.executable, "-m", "tokenpilot", *args],
        input=stdin.encode() if isinstance(stdin, str) else stdin,
        capture_output=True,
        check=False,
        env=env,
        cwd=cwd,
    )
    return subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


def one_error_line(done: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert done.returncode == code, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


@pytest.fixture
def conversation(tmp_path: Path) -> Path:
    messages = [
        {"role": "user", "content": "fix the parser"},
        {"role": "assistant", "content": "on it " * 40},
    ]
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"model": "gpt-4o", "messages": messages}), encoding="utf-8")
    return path


def test_compact_trim_and_budget_set_take_the_budget_syntax_of_pack(
    conversation: Path, tmp_path: Path
) -> None:
    compacted = run("compact", str(conversation), "--budget", "16k")
    assert compacted.returncode == 0, compacted.stderr
    assert json.loads(compacted.stdout)["model"] == "gpt-4o"
    trimmed = run("trim", "--budget", "1.5k", "--no-spill", "--json", stdin="line\n" * 5000)
    assert trimmed.returncode == 0, trimmed.stderr
    assert json.loads(trimmed.stdout)["budget"] == 1500
    db = str(tmp_path / "ledger.db")
    budget = run(
        "budget", "set", "acme", "--tokens", "1.5m", "--input-tokens", "20_000", "--json", "--db", db
    )
    assert budget.returncode == 0, budget.stderr
    limits = json.loads(budget.stdout)
    assert (limits["tokens"], limits["input_tokens"]) == (1_500_000, 20_000)


@pytest.mark.parametrize(
    "args",
    [
        ["compact", "--bogus"],
        ["trim", "--budget"],
        ["budget", "set"],
        ["budget", "set", "acme", "--warn", "lots"],
        ["ledger", "tail", "-n", "0"],
        ["models", "show"],
        ["no-such-command"],
    ],
)
def test_every_usage_error_is_one_line_on_stderr(args: list[str]) -> None:
    line = one_error_line(run(*args))
    assert "--help" in line  # where to read more, on the same line


@pytest.mark.parametrize("value", ["99999999999999999999", "1e99", "16kk", "-5", "0.5"])
def test_budgets_out_of_range_or_malformed_are_refused_in_one_line(value: str, conversation: Path) -> None:
    line = one_error_line(run("compact", str(conversation), "--budget", value))
    assert "--budget" in line
    if value == "99999999999999999999":
        assert "99,999,999,999,999,999,999" in line  # exact, never rounded through a float


def test_pack_refuses_huge_budgets_exactly_like_the_other_verbs(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    line = one_error_line(run("pack", str(tmp_path), "--task", "x", "--budget", "99999999999999999999"))
    assert "99,999,999,999,999,999,999" in line  # exact, never rounded through a float
    assert one_error_line(run("pack", str(tmp_path), "--task", "x", "--budget", "1e99"))


def test_account_budgets_above_the_maximum_are_refused_exactly(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.db")
    line = one_error_line(run("budget", "set", "acme", "--tokens", "99999999999999999999", "--db", db))
    assert "99,999,999,999,999,999,999" in line
    assert "1e99" in one_error_line(run("budget", "set", "acme", "--usd", "1e99", "--db", db))
    assert one_error_line(run("trim", "--budget", "1e99", stdin="x\n"))


@pytest.mark.parametrize("command", [["compact", "--budget", "1000"], ["plan"]])
@pytest.mark.parametrize(
    "document", ["[" * 100_000, "[" * 2_000 + "]" * 2_000, '{"a": ' * 5_000 + "1" + "}" * 5_000]
)
def test_deeply_nested_json_is_refused_in_one_line(command: list[str], document: str, tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text(document)
    assert "nested" in one_error_line(run(command[0], str(path), *command[1:]))


def test_trim_of_deeply_nested_json_trims_it_as_text() -> None:
    done = run("trim", "--budget", "50", "--no-spill", stdin="[" * 100_000)
    assert done.returncode == 0 and done.stdout.startswith("[[[") and done.stderr == ""


@pytest.mark.parametrize(
    "command",
    [["cost", "compare", "--workload"], ["ledger", "import"]],
    ids=["cost compare", "ledger import"],
)
def test_other_json_readers_refuse_deep_nesting_in_one_line(command: list[str], tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 100_000)
    one_error_line(
        run(*command, str(path), *(["--db", str(tmp_path / "l.db")] if "ledger" in command else []))
    )


def test_unknown_model_gets_a_suggestion_on_stderr_and_still_counts() -> None:
    done = run("count", "-", "--model", "gpt4o", "--json", stdin="hello world")
    assert done.returncode == 0
    assert "unknown model" in done.stderr and "did you mean gpt-4o?" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert json.loads(done.stdout)["total"] > 0


def test_known_models_print_no_warning() -> None:
    done = run("count", "-", "--model", "claude-3-5-sonnet-20241022", stdin="hello world")
    assert done.returncode == 0 and done.stderr == ""


@pytest.mark.parametrize(
    ("name", "entry", "prices"),
    [
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet", (3.0, 15.0)),
        ("claude-3-7-sonnet-latest", "claude-3-7-sonnet", (3.0, 15.0)),
        ("claude-sonnet-4-20250514", "claude-sonnet-4", (3.0, 15.0)),
        ("claude-opus-4-1", "claude-opus-4-1", (15.0, 75.0)),  # not a newer Opus's $5/$25
        ("anthropic/claude-3-haiku-20240307", "claude-3-haiku", (0.25, 1.25)),
    ],
)
def test_dated_and_latest_claude_names_resolve_to_their_own_published_price(
    name: str, entry: str, prices: tuple[float, float]
) -> None:
    info = tp.get_model(name)
    assert info.provider == "anthropic"
    assert (info.input_per_mtok, info.output_per_mtok) == prices
    assert info.sources["input_per_mtok"] in ("data", f"data:{entry}")
    shown = json.loads(run("models", "show", name, "--json").stdout)
    assert shown["input_per_mtok"] == info.input_per_mtok


def test_a_claude_name_newer_than_the_data_takes_its_family_price_labelled() -> None:
    info = tp.get_model("claude-sonnet-4-7-20261001")
    assert info.price_known and info.provider == "anthropic"
    # labelled, not passed off as exact
    assert info.sources["input_per_mtok"].startswith("family:claude-sonnet-")


def test_compact_refuses_contradictory_thresholds(conversation: Path) -> None:
    line = one_error_line(run("compact", str(conversation), "--trigger", "12000", "--target", "20000"))
    assert "--target 20,000" in line and "--trigger 12,000" in line
    assert "1.5" in one_error_line(run("compact", str(conversation), "--trigger", "1.5", "--target", "0.5"))
    line = one_error_line(run("compact", str(conversation), "--budget", "16k", "--trigger", "20k"))
    assert "--budget 16,000" in line
    assert run("compact", str(conversation), "--trigger", "12k", "--target", "8k").returncode == 0


def test_compact_takes_its_thresholds_from_the_config(conversation: Path, tmp_path: Path) -> None:
    (tmp_path / "tokenpilot.toml").write_text("[compact]\ntrigger = 0.9\ntarget = 0.6\n")
    done = run("compact", str(conversation), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (tmp_path / "tokenpilot.toml").write_text("[compact]\ntrigger = 0.5\ntarget = 0.6\n")
    assert "[compact] target" in one_error_line(run("compact", str(conversation), cwd=tmp_path))


def test_compact_of_a_directory_says_it_is_a_directory(tmp_path: Path) -> None:
    assert "is a directory" in one_error_line(run("compact", str(tmp_path), "--budget", "1000"))


def test_trim_of_a_binary_file_is_refused_in_one_line(tmp_path: Path) -> None:
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 64)
    assert "binary" in one_error_line(run("trim", str(binary), "--budget", "100"))
    assert "binary" in one_error_line(run("trim", "--budget", "100", stdin=bytes(range(256)) * 64))


def test_help_shows_bracketed_config_names_as_written() -> None:
    assert "[ledger] url" in run("budget", "set", "--help").stdout
    assert "[trim] config" in run("trim", "--help").stdout


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_metavars_read_as_words(command: list[str]) -> None:
    done = run(*command, "--help")
    assert done.returncode == 0, done.stderr
    for typename in ("<bool>", "<list[str]>", "<str>", "<int>", "<float>", "<Path>"):
        assert typename not in done.stdout, (typename, done.stdout)
