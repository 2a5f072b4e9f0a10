"""The budget, ledger and report commands (thin shells over the library)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tokenpilot as tp
from tokenpilot.cli import app

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_budget_set_show_rm_round_trip(tmp_path: Path) -> None:
    db = str(tmp_path / "l.db")
    run(
        "budget",
        "set",
        "acme/fileorg",
        "--tokens",
        "2000000",
        "--period",
        "daily",
        "--warn",
        "0.8",
        "--db",
        db,
    )
    shown = json.loads(run("budget", "show", "--json", "--db", db))
    assert [(u["scope"], u["limit"], u["budget"]["period"]) for u in shown] == [
        ("acme/fileorg", 2_000_000, "daily")
    ]
    assert "acme/fileorg" in run("budget", "show", "--db", db)
    run("budget", "rm", "acme/fileorg", "--db", db)
    assert json.loads(run("budget", "show", "--json", "--db", db)) == []


def test_budget_show_for_a_scope_without_budget_reports_spend(tmp_path: Path) -> None:
    db = str(tmp_path / "l.db")
    with tp.open_ledger(db) as acct:
        acct.record_call("acme/x", model="gpt-4o", input_tokens=40, output_tokens=2)
    (usage,) = json.loads(run("budget", "show", "acme", "--json", "--db", db))
    assert (usage["limit"], usage["spent"], usage["state"]) == (None, 42, "unlimited")


def test_default_database_lives_in_xdg_data_home() -> None:
    run("budget", "set", "acme", "--tokens", "5")
    assert (Path(os.environ["XDG_DATA_HOME"]) / "tokenpilot" / "ledger.db").is_file()


def test_tokenpilot_db_url_environment_variable_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "env.db"
    monkeypatch.setenv("TOKENPILOT_DB_URL", str(target))
    run("budget", "set", "acme", "--tokens", "5")
    with tp.open_ledger(str(target)) as acct:
        assert [b.scope for b in acct.budgets()] == ["acme"]


def test_ledger_import_export_tail_and_report(tmp_path: Path) -> None:
    db = str(tmp_path / "l.db")
    usage = tmp_path / "usage.csv"
    usage.write_text(
        "timestamp,model,input_tokens,output_tokens,project\n"
        "2026-11-01T10:00:00Z,gpt-4o,1000,200,acme/a\n"
        "2026-11-02T10:00:00Z,gpt-4o-mini,500,50,acme/b\n"
    )
    assert json.loads(run("ledger", "import", str(usage), "--json", "--db", db))["imported"] == 2
    exported = run("ledger", "export", "--db", db)
    assert [json.loads(line)["scope"] for line in exported.splitlines()] == ["acme/a", "acme/b"]
    tail = json.loads(run("ledger", "tail", "-n", "1", "--json", "--db", db))
    assert [r["model"] for r in tail] == ["gpt-4o-mini"]
    report = json.loads(run("report", "--since", "all", "--by", "model", "--json", "--db", db))
    assert {g["key"]: g["total_tokens"] for g in report["groups"]} == {"gpt-4o": 1_200, "gpt-4o-mini": 550}
    csv_out = run("report", "--since", "all", "--csv", "--db", db).splitlines()
    assert csv_out[0].startswith("key,calls") and csv_out[-1].startswith("total,2,")
    plot = tmp_path / "r.svg"
    run("report", "--since", "all", "--plot", str(plot), "--db", db)
    assert plot.read_text().count("<svg") == 1


def test_alerts_listed_and_acknowledged(tmp_path: Path) -> None:
    db = str(tmp_path / "l.db")
    with tp.open_ledger(db) as acct:
        acct.record_call(
            "a", model="gpt-4o", input_tokens=1, output_tokens=10, max_tokens=10, finish_reason="length"
        )
    (alert,) = json.loads(run("ledger", "alerts", "--json", "--db", db))
    run("ledger", "ack", str(alert["id"]), "--db", db)
    assert json.loads(run("ledger", "alerts", "--json", "--db", db)) == []


def test_errors_are_one_line_with_an_exit_code_never_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "usage.csv"
    bad.write_text("timestamp,model,input_tokens\nnot-a-time,gpt-4o,1\n")
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"garbage" * 1000)
    cases = [
        (["ledger", "import", str(bad), "--db", str(tmp_path / "l.db")], 2, "line 2"),
        (["budget", "show", "--db", str(corrupt)], 4, "corrupt"),
        (["budget", "set", "acme", "--db", str(tmp_path / "l.db")], 2, "at least one limit"),
    ]
    for args, code, text in cases:
        done = subprocess.run([sys.executable, "-m", "tokenpilot", *args], capture_output=True, text=True)
        assert done.returncode == code, done.stderr
        assert text in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
