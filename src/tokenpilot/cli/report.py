"""`tokenpilot report`: where the tokens went, and what to change."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tokenpilot import _account
from tokenpilot._account.times import iso, parse_time
from tokenpilot.cli._output import print_json
from tokenpilot.cli._tables import say, table
from tokenpilot.cli.budget import DB_OPTION

if TYPE_CHECKING:
    from tokenpilot._account import GroupStats


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _cost(group: GroupStats) -> str:
    if group.cost_usd is None:
        return "unknown"
    known = f"${group.cost_usd:,.2f}"
    return f"{known} +{group.unknown_cost_calls}?" if group.unknown_cost_calls else known


def report(
    since: str = typer.Option(
        "7d", "--since", help="Window start: 7d, 24h, 2026-11-01, … ('all' for everything)."
    ),
    by: str = typer.Option("scope", "--by", help="scope, phase, model, agent, task_type, session or day."),
    scope: str | None = typer.Option(None, "--scope", help="Only this scope and beneath."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    as_csv: bool = typer.Option(False, "--csv", help="Print the groups as CSV."),
    plot: Path | None = typer.Option(None, "--plot", help="Also draw a chart to FILE.png or FILE.svg."),
    db: str | None = DB_OPTION,
) -> None:
    """Tokens, cost, calls, truncation, output utilization, cache hits, first-attempt success; advice."""
    now = time.time()
    start = None if since == "all" else parse_time(since, now=now)
    with _account.open_ledger(db, read_only=True) as acct:
        result = acct.report(since=start, by=by, scope=scope)
    if plot is not None:
        from tokenpilot._account.plot import plot_report

        plot_report(result, plot)
    if as_json:
        print_json(result.as_dict())
        return
    if as_csv:
        records = [g.as_dict() for g in (*result.groups, result.total)]
        writer = csv.DictWriter(sys.stdout, fieldnames=list(records[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return
    columns = (by, "calls", "tokens", "cost", "trunc", "util mean", "util p90", "cache hit", "1st ok")
    rows = [
        [
            group.key,
            f"{group.calls:,}",
            f"{group.total_tokens:,}",
            _cost(group),
            _pct(group.truncation_rate),
            _pct(group.mean_output_utilization),
            _pct(group.p90_output_utilization),
            _pct(group.cache_hit_rate),
            _pct(group.first_attempt_success),
        ]
        for group in (*result.groups, result.total)
    ]
    window = "everything" if start is None else f"since {iso(start)}"
    say(f"ledger {window}, by {by}")
    table(columns, rows, right=columns[1:])
    if any(group.unknown_cost_calls for group in (*result.groups, result.total)):
        say("+N? = calls of unknown price, not in the cost; unknown = no call with a known price")
    if result.recommendations:
        say("\nrecommendations:")
        for rec in result.recommendations:
            say(f"- {rec.message}")
    if plot is not None:
        say(f"\nplot written to {plot}")
