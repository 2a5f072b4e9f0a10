"""The `tokenpilot` command: a thin shell over the library, one module per command group."""

from __future__ import annotations

import logging
import sys
from typing import Any

import typer
from rich.markup import escape

from tokenpilot import __version__
from tokenpilot._exceptions import TokenpilotError
from tokenpilot.cli import budget, compact, count, ledger, models, plan, report, spill, trim
from tokenpilot.cli import fit as fit_command
from tokenpilot.cli import handoff as handoff_command
from tokenpilot.cli import pack as pack_command
from tokenpilot.cli import serve as serve_command
from tokenpilot.cli._output import WARNINGS_HANDLER, fail

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
app.command("handoff")(handoff_command.handoff)
app.command("fit")(fit_command.fit)
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
    _show_warnings()


class _Lowercase(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


class _Stderr(logging.Handler):
    """Writes to whatever `sys.stderr` is at the time (as logging's last resort does)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # a closed or broken stderr must not turn a warning into a crash
            self.handleError(record)


def _show_warnings() -> None:
    """The library's warnings on stderr, once each, as `warning: …` (not Python's bare last resort)."""
    logger = logging.getLogger("tokenpilot")
    if not any(getattr(h, "name", None) == WARNINGS_HANDLER for h in logger.handlers):
        handler = _Stderr()
        handler.set_name(WARNINGS_HANDLER)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(_Lowercase())
        logger.addHandler(handler)


# Click's exception classes, found through typer's public BadParameter (typer may vendor click).
_CLICK_ERROR: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _tidy(command: Any) -> Any:
    """Help as written and metavars that read as words, on every command of the tree.

    Help text is escaped so rich markup cannot eat `[ledger]`; flags show no `<bool>`; an option
    shows its name (`--budget BUDGET`), an argument its name alone, never `<list[str]>`.
    """
    if command.help:
        command.help = escape(command.help)
    if command.short_help:
        command.short_help = escape(command.short_help)
    for param in command.params:
        if getattr(param, "help", None):
            param.help = escape(param.help)
        if param.param_type_name == "option":
            if getattr(param, "is_flag", False) or getattr(param, "count", False):
                param.metavar = ""
            elif param.metavar is None:
                param.metavar = (param.name or "value").upper()
        elif param.param_type_name == "argument":
            if param.metavar is None:
                param.metavar = (param.name or "value").upper().removesuffix("S" if param.nargs != 1 else "")
            param.display_type_rich = lambda ctx: None  # the name says it; `<list[str]>` does not
    help_option = command.get_help_option

    def quiet_help_option(ctx: Any) -> Any:
        option = help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = quiet_help_option
    for sub in getattr(command, "commands", {}).values():
        _tidy(sub)
    return command


def _usage_error(exc: Any, command: Any, argv: list[str]) -> str:
    """A click usage error as one line: what is wrong, then where the help is."""
    message = " ".join(line.strip() for line in exc.format_message().splitlines() if line.strip())
    if getattr(exc, "ctx", None) is not None:
        path = exc.ctx.command_path
    else:  # raised before a context existed: follow the command words of the command line
        words = ["tokenpilot"]
        for word in argv:
            command = getattr(command, "commands", {}).get(word)
            if command is None:
                break
            words.append(word)
        path = " ".join(words)
    return f"{message} (see: {path} --help)"


def main() -> None:
    """Console-script entry: library and usage errors become one line on stderr and an exit code."""
    command = _tidy(typer.main.get_command(app))
    try:
        code = command.main(prog_name="tokenpilot", standalone_mode=False)
    except _CLICK_ERROR as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare `tokenpilot budget` asks for help
            sys.stdout.write(exc.format_message() + "\n")  # type: ignore[attr-defined]
            raise SystemExit(2) from None
        fail(_usage_error(exc, command, sys.argv[1:]), getattr(exc, "exit_code", 2))
    except typer.Abort:
        fail("aborted", 1)
    except TokenpilotError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except RecursionError:  # the last guard for any reader of nested input (JSON, JSONL)
        fail("input nested too deeply to read", 2)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(1)
    if code == 130:
        fail("interrupted", 130)
    if isinstance(code, int) and code:
        sys.exit(code)
