"""Stores that refuse to be damaged: each command on a missing, foreign, corrupt or read-only ledger.

Reading never creates or migrates a database; writing refuses a corrupt file and a database that
holds another application's tables (unless asked with `--add-schema`); readers need no write lock.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tokenpilot as tp
from ledger_support import pg_schema_url, require_pg
from tokenpilot.cli import app

runner = CliRunner()
READ_COMMANDS = [
    ["report", "--since", "all"],
    ["ledger", "tail"],
    ["budget", "show"],
    ["ledger", "export"],
    ["ledger", "alerts"],
]


def invoke(*args: str) -> tuple[int, str]:
    """Exit code and output of a command, library errors mapped as `tokenpilot.cli.main` maps them."""
    result = runner.invoke(app, list(args))
    if isinstance(result.exception, tp.TokenpilotError):
        return result.exception.exit_code, str(result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_usage_csv(path: Path, rows: int, model: str = "gpt-4o", *, request_ids: bool = True) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["timestamp", "model", "prompt_tokens", "completion_tokens", "request_id"][
                : 5 if request_ids else 4
            ]
        )
        for i in range(rows):
            writer.writerow(
                [1_780_000_000 + i, model, 100 + i, 10, f"{model}-{i}"][: 5 if request_ids else 4]
            )
    return path


def damaged_ledger(tmp_path: Path) -> Path:
    """A real ledger with one page in the middle overwritten, as a disk or copy error would leave it."""
    path = tmp_path / "damaged.db"
    with tp.open_ledger(str(path)) as acct:
        acct.import_file(write_usage_csv(tmp_path / "usage.csv", 2_000), scope="acme")
    with sqlite3.connect(path) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    assert pages > 10
    with path.open("r+b") as handle:
        handle.seek(page_size * (pages // 2))
        handle.write(os.urandom(page_size))
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["budget", "set", "acme", "--tokens", "5"],
        ["budget", "rm", "acme"],
        ["ledger", "import", "USAGE"],
        ["ledger", "ack", "1"],
        ["report", "--since", "all"],
    ],
)
def test_every_command_refuses_a_damaged_sqlite_file_with_exit_4_and_leaves_it_as_it_was(
    tmp_path: Path, command: list[str]
) -> None:
    path = damaged_ledger(tmp_path)
    before = digest(path)
    usage = write_usage_csv(tmp_path / "more.csv", 3, model="gpt-4o-mini", request_ids=False)
    args = [str(usage) if part == "USAGE" else part for part in command]
    code, output = invoke(*args, "--db", str(path))
    assert code == 4, output
    assert "corrupt" in output and str(path) in output
    assert digest(path) == before


def test_library_writes_refuse_a_damaged_sqlite_file(tmp_path: Path) -> None:
    path = damaged_ledger(tmp_path)
    before = digest(path)
    with pytest.raises(tp.StoreError, match="corrupt"):
        tp.open_ledger(str(path))
    assert digest(path) == before


@pytest.mark.parametrize("command", READ_COMMANDS)
def test_reading_a_missing_ledger_is_one_clear_line_naming_it_and_creates_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "typo" / "ledgr.db"
    code, output = invoke(*command, "--db", str(path))
    assert code == 4, output
    assert f"no ledger at {path}" in output and len(output.strip().splitlines()) == 1
    assert not path.exists() and not path.parent.exists()


@pytest.mark.postgres
def test_reading_a_missing_postgres_ledger_creates_no_tables() -> None:
    base = require_pg()
    import sqlalchemy

    engine = sqlalchemy.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    schema = f"t_read_{os.getpid()}"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        code, output = invoke("report", "--since", "all", "--db", pg_schema_url(base, schema))
        assert code == 4 and "no ledger" in output, output
        with engine.connect() as conn:
            assert sqlalchemy.inspect(conn).get_table_names(schema=schema) == []
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


def foreign_database(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
        conn.execute("INSERT INTO invoices (amount) VALUES (12.5)")
    return path


@pytest.mark.parametrize(
    "command", [*READ_COMMANDS, ["budget", "set", "acme", "--tokens", "5"], ["ledger", "import", "USAGE"]]
)
def test_a_database_of_another_application_is_refused_and_left_untouched(
    tmp_path: Path, command: list[str]
) -> None:
    path = foreign_database(tmp_path)
    before = digest(path)
    usage = write_usage_csv(tmp_path / "u.csv", 2)
    args = [str(usage) if part == "USAGE" else part for part in command]
    code, output = invoke(*args, "--db", str(path))
    assert code == 4, output
    assert "not a tokenpilot ledger" in output and "invoices" in output
    assert digest(path) == before


def test_add_schema_adds_tokenpilot_tables_beside_another_applications(tmp_path: Path) -> None:
    path = foreign_database(tmp_path)
    code, output = invoke("budget", "set", "acme", "--tokens", "5", "--db", str(path), "--add-schema")
    assert code == 0, output
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT amount FROM invoices").fetchall() == [(12.5,)]
    (tmp_path / "other").mkdir()
    with pytest.raises(tp.StoreError, match="not a tokenpilot ledger"):
        tp.open_ledger(str(foreign_database(tmp_path / "other")))
    with tp.open_ledger(str(path)) as acct:  # once added, it is a ledger like any other
        assert [b.scope for b in acct.budgets()] == ["acme"]


def test_reading_never_migrates_an_older_ledger(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    tp.open_ledger(str(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM tp_migrations WHERE name <> 'm001_initial'")
    before = digest(path)
    code, output = invoke("report", "--since", "all", "--db", str(path))
    assert code == 4 and "older tokenpilot" in output, output
    assert digest(path) == before


SETPRIV = shutil.which("setpriv")
# Root ignores file modes; without CAP_DAC_OVERRIDE it obeys them like any other user.
AS_READER = [SETPRIV or "", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", "--"]


@pytest.mark.skipif(
    os.geteuid() != 0 or SETPRIV is None, reason="needs root and setpriv to drop capabilities"
)
def test_a_user_who_can_only_read_the_ledger_can_run_report_tail_show_and_export(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    path = shared / "ledger.db"
    with tp.open_ledger(str(path)) as acct:
        acct.set_budget("acme", tokens=1_000)
        acct.record_call("acme/a", model="gpt-4o", input_tokens=40, output_tokens=2)
    path.chmod(0o444)
    shared.chmod(0o555)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENPILOT_")}
    before, files = digest(path), sorted(p.name for p in shared.iterdir())
    try:
        for command in (
            ["report", "--since", "all"],
            ["ledger", "tail"],
            ["budget", "show"],
            ["ledger", "export"],
        ):
            done = subprocess.run(
                [*AS_READER, sys.executable, "-m", "tokenpilot", *command, "--db", str(path)],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            assert "acme" in done.stdout
        denied = subprocess.run(
            [
                *AS_READER,
                sys.executable,
                "-m",
                "tokenpilot",
                "budget",
                "set",
                "x",
                "--tokens",
                "1",
                "--db",
                str(path),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert denied.returncode == 4 and "read-only" in denied.stderr, denied.stderr
    finally:
        shared.chmod(0o755)
    assert digest(path) == before
    assert sorted(p.name for p in shared.iterdir()) == files


def test_import_of_calls_without_a_price_raises_the_unknown_price_alert(tmp_path: Path) -> None:
    db = str(tmp_path / "l.db")
    usage = tmp_path / "mixed.csv"
    with usage.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "model", "prompt_tokens", "completion_tokens"])
        for i in range(10):
            writer.writerow([1_780_000_000 + i, "gpt-4o" if i % 3 else "in-house-llm-7b", 100, 10])
    code, output = invoke("ledger", "import", str(usage), "--db", db)
    assert code == 0, output
    code, output = invoke("ledger", "alerts", "--db", db)
    assert code == 0 and "unknown_price" in output and "in-house-llm-7b" in output, output


def test_a_group_whose_calls_all_lack_a_price_shows_unknown_cost(tmp_path: Path) -> None:
    db = str(tmp_path / "l.db")
    with tp.open_ledger(db) as acct:
        for _ in range(3):
            acct.record_call("lab", model="in-house-llm-7b", input_tokens=100, output_tokens=10)
        acct.record_call("prod", model="gpt-4o", input_tokens=100, output_tokens=10)
        acct.record_call("prod", model="in-house-llm-7b", input_tokens=100, output_tokens=10)
        report = acct.report(by="scope")
    costs = {g.key: g.cost_usd for g in report.groups}
    assert costs["lab"] is None and costs["prod"] is not None and costs["prod"] > 0
    code, output = invoke("report", "--since", "all", "--by", "scope", "--db", db)
    assert code == 0, output
    lab = next(line for line in output.splitlines() if line.startswith("lab"))
    assert "unknown" in lab and "$0.00" not in lab
    assert "+1?" in next(line for line in output.splitlines() if line.startswith("prod"))
    assert "? = calls of unknown price" in output
