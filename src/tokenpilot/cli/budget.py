"""`tokenpilot budget`: set, show and remove budgets on scopes."""

from __future__ import annotations

import typer

from tokenpilot import _account
from tokenpilot._account.times import iso
from tokenpilot._budget import Usage
from tokenpilot.cli._input import ACCOUNT_LIMITS, parse_optional_budget, parse_usd
from tokenpilot.cli._output import print_json
from tokenpilot.cli._tables import say, table

app = typer.Typer(help="Token and USD budgets on scopes (org/project/phase/agent).", no_args_is_help=True)

DB_OPTION = typer.Option(
    None,
    "--db",
    help="Database URL or SQLite path (default: TOKENPILOT_DB_URL, [ledger] url, user data dir).",
)
ADD_SCHEMA_OPTION = typer.Option(
    False,
    "--add-schema",
    help="Add tokenpilot's tables to a database that already holds other tables (refused otherwise).",
)


def _amount(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    return f"${value:,.2f}" if unit == "usd" else f"{value:,.0f}"


@app.command("set")
def set_command(
    scope: str = typer.Argument(..., help="Scope path, e.g. acme/fileorg."),
    tokens: str | None = typer.Option(None, "--tokens", help="Limit on input + output tokens (2m, 500k)."),
    input_tokens: str | None = typer.Option(None, "--input-tokens", help="Limit on input tokens."),
    output_tokens: str | None = typer.Option(None, "--output-tokens", help="Limit on output tokens."),
    usd: str | None = typer.Option(None, "--usd", help="Limit in US dollars (needs known prices)."),
    period: str = typer.Option(
        "none", "--period", help="none, hourly, daily, weekly, monthly or rolling:N[smhd]."
    ),
    warn: float = typer.Option(0.8, "--warn", help="Warn when spent + reserved reaches this fraction."),
    timezone: str | None = typer.Option(None, "--timezone", help="IANA zone periods align to (default UTC)."),
    db: str | None = DB_OPTION,
    add_schema: bool = ADD_SCHEMA_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create or replace the budget on SCOPE."""
    with _account.open_ledger(db, add_schema=add_schema) as acct:
        budget = acct.set_budget(
            scope,
            tokens=parse_optional_budget(tokens, "--tokens", **ACCOUNT_LIMITS),
            input_tokens=parse_optional_budget(input_tokens, "--input-tokens", **ACCOUNT_LIMITS),
            output_tokens=parse_optional_budget(output_tokens, "--output-tokens", **ACCOUNT_LIMITS),
            usd=parse_usd(usd),
            period=period,
            warn_at=warn,
            timezone=timezone,
        )
    if as_json:
        print_json(budget.as_dict())
        return
    limits = ", ".join(
        f"{_amount(v, unit)} {unit if unit != 'usd' else ''}".strip() for unit, v in budget.limits().items()
    )
    say(
        f"budget on {budget.scope}: {limits}, period {budget.period} ({budget.timezone}), "
        f"warn at {budget.warn_at:.0%}"
    )


def _usage_rows(usage: Usage) -> list[list[str]]:
    rows = []
    for line in usage.lines:
        fraction = line.fraction
        rows.append(
            [
                usage.scope,
                usage.budget.period if usage.budget else "–",
                line.unit,
                _amount(line.limit, line.unit),
                _amount(line.spent, line.unit),
                _amount(line.reserved, line.unit),
                _amount(line.remaining, line.unit),
                "–" if fraction is None else f"{fraction:.0%}",
                usage.state,
            ]
        )
    return rows


@app.command("show")
def show_command(
    scope: str | None = typer.Argument(
        None, help="Only this scope (shown even without a budget) and budgets beneath it."
    ),
    db: str | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show budgets with spent, reserved and remaining in the current period."""
    with _account.open_ledger(db, read_only=True) as acct:
        scopes = [b.scope for b in acct.budgets(scope)]
        if scope is not None and scope.strip("/") not in scopes:
            scopes.insert(0, scope)
        usages = [acct.usage(s) for s in scopes]
    if as_json:
        print_json([u.as_dict() for u in usages])
        return
    if not usages:
        say("no budgets set (tokenpilot budget set SCOPE --tokens N --period daily)")
        return
    columns = ("scope", "period", "unit", "limit", "spent", "reserved", "remaining", "used", "state")
    rows = [row for usage in usages for row in _usage_rows(usage)]
    table(columns, rows, right=("limit", "spent", "reserved", "remaining", "used"))
    for usage in usages:
        if usage.period_end is not None:
            say(f"{usage.scope}: period {iso(usage.period_start or 0)} → {iso(usage.period_end)}")
        if usage.unknown_cost_calls:
            say(f"{usage.scope}: {usage.unknown_cost_calls} calls of unknown price are not in the USD spent")


@app.command("rm")
def rm_command(
    scope: str = typer.Argument(..., help="Scope whose budget to remove (its records are kept)."),
    db: str | None = DB_OPTION,
) -> None:
    """Remove the budget on SCOPE."""
    from tokenpilot.cli._output import fail

    with _account.open_ledger(db) as acct:
        removed = acct.remove_budget(scope)
    if not removed:
        fail(f"no budget on {scope!r}", 2)
    say(f"removed the budget on {scope.strip('/')}")
