"""The `tokenpilot` command: a thin shell over the library, one module per command group."""

from __future__ import annotations

import sys

import typer

from tokenpilot import __version__
from tokenpilot._exceptions import TokenpilotError
from tokenpilot.cli import budget, compact, count, ledger, models, plan, report, spill, trim
from tokenpilot.cli import pack as pack_command
from tokenpilot.cli import serve as serve_command
from tokenpilot.cli._output import fail

app = typer.Typer(
    name="tokenpilot",
    help="Keep LLM agents inside their token budgets, and account for every token.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# In the order of the README: fit, plan, account, then the foundation.
app.command("pack")(pack_command.pack)
app.command("compact")(compact.compact)
app.command("trim")(trim.trim)
app.command("plan")(plan.plan)
app.add_typer(plan.cost_app, name="cost")
app.add_typer(budget.app, name="budget")
app.add_typer(ledger.app, name="ledger")
app.command("report")(report.report)
app.command("count")(count.count)
app.add_typer(models.app, name="models")
app.command("serve")(serve_command.serve)
app.add_typer(spill.app, name="spill")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tokenpilot {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Keep LLM agents inside their token budgets, and account for every token."""


def main() -> None:
    """Console-script entry: library errors become one line on stderr and an exit code.

    Typer runs in standalone mode, so usage errors print the usage and exit 2 by themselves.
    """
    try:
        app()
    except TokenpilotError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(1)
