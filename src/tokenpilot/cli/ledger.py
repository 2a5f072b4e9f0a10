"""`tokenpilot ledger`: import usage exports, export the ledger, tail recent calls, alerts."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer

from tokenpilot import _account
from tokenpilot._account.exchange import export_lines
from tokenpilot._account.times import iso, parse_time
from tokenpilot.cli._output import fail, print_json
from tokenpilot.cli._tables import say, table
from tokenpilot.cli.budget import ADD_SCHEMA_OPTION, DB_OPTION

app = typer.Typer(help="The per-call ledger: import, export, tail, alerts, migrate.", no_args_is_help=True)


@app.command("import")
def import_command(
    file: Path = typer.Argument(..., help="Usage export: .csv or .jsonl (timestamp, model, tokens, cost…)."),
    scope: str = typer.Option("imported", "--scope", help="Scope for rows without a scope/project column."),
    fmt: str | None = typer.Option(None, "--format", help="csv or jsonl (default: from the file name)."),
    db: str | None = DB_OPTION,
    add_schema: bool = ADD_SCHEMA_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Import a usage export; every row or none (bad rows are listed with their line numbers)."""
    with _account.open_ledger(db, add_schema=add_schema) as acct:
        result = acct.import_file(file, scope=scope, fmt=fmt)
    if as_json:
        print_json(result.as_dict())
        return
    mapped = ", ".join(f"{theirs}→{ours}" for ours, theirs in sorted(result.columns.items()))
    say(f"imported {result.imported} calls from {file}; skipped {result.skipped_duplicates} already imported")
    say(f"columns: {mapped}")


@app.command("export")
def export_command(
    fmt: str = typer.Option("jsonl", "--format", help="jsonl or csv."),
    since: str | None = typer.Option(None, "--since", help="7d, 24h, 2026-11-01, … (default: everything)."),
    scope: str | None = typer.Option(None, "--scope", help="Only this scope and beneath."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    db: str | None = DB_OPTION,
) -> None:
    """Export ledger records, oldest first (re-importable with `ledger import`)."""
    start = None if since is None else parse_time(since, now=time.time())
    with _account.open_ledger(db, read_only=True) as acct:
        records = acct.records(since=start, scope=scope)
    lines = export_lines(records, fmt)
    if output is None:
        for line in lines:
            sys.stdout.write(line)
        return
    output.write_text("".join(lines), encoding="utf-8")
    say(f"wrote {len(records)} records to {output}")


@app.command("tail")
def tail_command(
    n: int = typer.Option(20, "-n", "--lines", min=1, help="How many recent calls."),
    scope: str | None = typer.Option(None, "--scope", help="Only this scope and beneath."),
    db: str | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the most recent calls."""
    with _account.open_ledger(db, read_only=True) as acct:
        records = acct.records(scope=scope, limit=n)
    if as_json:
        print_json([r.as_dict() for r in records])
        return
    rows = [
        [
            iso(r.ts),
            r.scope,
            r.model,
            f"{r.input_tokens:,}",
            f"{r.output_tokens:,}",
            "–" if r.max_tokens is None else f"{r.max_tokens:,}",
            (r.finish_reason or "–") + (" (truncated)" if r.truncated else ""),
            "unknown" if r.cost_usd is None else f"${r.cost_usd:,.4f}",
            r.status,
        ]
        for r in records
    ]
    columns = ("time", "scope", "model", "in", "out", "max", "finish", "cost", "status")
    table(columns, rows, right=("in", "out", "max", "cost"))


@app.command("alerts")
def alerts_command(
    show_all: bool = typer.Option(False, "--all", help="Include acknowledged alerts."),
    kind: str | None = typer.Option(None, "--kind", help="capacity_warning, budget_exceeded, truncation, …"),
    db: str | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List alerts (unacknowledged ones unless --all)."""
    with _account.open_ledger(db, read_only=True) as acct:
        alerts = acct.alerts(kind=kind, unacknowledged=not show_all)
    if as_json:
        print_json([a.as_dict() for a in alerts])
        return
    for alert in alerts:
        seen = " (acknowledged)" if alert.acknowledged else ""
        say(f"#{alert.id} {iso(alert.ts)} {alert.kind}: {alert.message}{seen}")
    if not alerts:
        say("no alerts")


@app.command("ack")
def ack_command(
    alert_id: int = typer.Argument(..., help="Alert number from `ledger alerts`."),
    db: str | None = DB_OPTION,
) -> None:
    """Acknowledge an alert."""
    with _account.open_ledger(db) as acct:
        if not acct.acknowledge(alert_id):
            fail(f"no unacknowledged alert #{alert_id}", 2)
    say(f"acknowledged alert #{alert_id}")


@app.command("migrate")
def migrate_command(
    db: str | None = DB_OPTION,
    add_schema: bool = ADD_SCHEMA_OPTION,
) -> None:
    """Create the ledger, or bring one written by an older tokenpilot up to date."""
    with _account.open_ledger(db, add_schema=add_schema) as acct:
        say(f"ledger {acct.url} is up to date")
