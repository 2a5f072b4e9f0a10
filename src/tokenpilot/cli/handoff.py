"""`tokenpilot handoff`: a long conversation replaced by system + task + one hand-off message."""

from __future__ import annotations

import json
from typing import Any

import typer

from tokenpilot._exceptions import InputError
from tokenpilot.cli._input import parse_budget, read_source
from tokenpilot.cli._output import print_json, stderr


def read_json(source: str) -> Any:
    """The JSON document of a file or stdin ('-'), or one clear InputError."""
    text = read_source(source)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(f"{source}: not valid JSON ({exc})") from None


def handoff(
    source: str = typer.Argument(
        "-", metavar="FILE|-", help="JSON messages array or request body; '-' for stdin."
    ),
    budget: str = typer.Option(
        ..., "--budget", "-b", help="Token budget of the new conversation (8000, 8k)."
    ),
    model: str | None = typer.Option(None, "--model", "-m", help="Model: tokenizer (default: the body's)."),
    instructions: str | None = typer.Option(
        None, "--instructions", "-i", help="What the next phase should do (added to the hand-off)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print {messages, report} instead of the messages."),
) -> None:
    """Hand a conversation off to its next phase: system prompt and task kept, the rest recorded in one
    message (files changed, errors, commands, decisions, next steps) within the budget."""
    from tokenpilot._handoff import handoff as hand_off

    data = read_json(source)
    result = hand_off(data, budget=parse_budget(budget), model=model, instructions=instructions)
    if as_json:
        print_json({"messages": result.messages, "report": result.report()})
        return
    print_json(result.messages)
    stderr.print(
        f"{result.tokens_before:,} -> {result.tokens:,} tokens ({result.messages_replaced:,} messages "
        f"handed off, {result.summarizer})"
    )
