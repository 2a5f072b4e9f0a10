"""`tokenpilot fit`: a sub-agent's context (a JSON object) fitted to a token budget."""

from __future__ import annotations

import sys

import typer

from tokenpilot._exceptions import InputError
from tokenpilot.cli._input import parse_budget
from tokenpilot.cli._output import print_json, stderr
from tokenpilot.cli.handoff import read_json


def _keys(value: str | None) -> tuple[str, ...]:
    return tuple(k.strip() for k in (value or "").split(",") if k.strip())


def fit(
    source: str = typer.Argument(..., metavar="CONTEXT.json", help="A JSON object; '-' for stdin."),
    budget: str = typer.Option(..., "--budget", "-b", help="Token budget of the compact JSON (30000, 30k)."),
    keep: str | None = typer.Option(None, "--keep", help="Required keys, comma-separated (kept whole)."),
    agent: str | None = typer.Option(
        None, "--agent", help="Take required and priority keys from [agents.NAME] of the config."
    ),
    model: str | None = typer.Option(None, "--model", "-m", help="Model whose tokenizer counts the budget."),
    as_json: bool = typer.Option(False, "--json", help='Print {"context": ..., "report": ...}.'),
) -> None:
    """Fit a context to a budget: required keys whole, others by priority, long values reduced."""
    from tokenpilot._handoff import agent_fields, fit_context

    data = read_json(source)
    if not isinstance(data, dict):
        raise InputError(f"{source}: the context must be a JSON object")
    required, priority = agent_fields(agent) if agent else ((), ())
    required = tuple(dict.fromkeys([*required, *_keys(keep)]))
    result = fit_context(data, parse_budget(budget), model=model, required=required, priority=priority)
    if as_json:
        print_json({"context": result.context, "report": result.report()})
        return
    sys.stdout.write(result.json + "\n")
    stderr.print(
        f"{result.tokens_before:,} -> {result.tokens:,} tokens ({len(result.reductions)} reductions, "
        f"{len(result.dropped)} keys dropped)"
    )
