"""`tokenpilot compact`: a conversation (messages array or request body) compacted to fit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from tokenpilot._compact import compact as compact_conversation
from tokenpilot._exceptions import InputError
from tokenpilot.cli._input import read_source
from tokenpilot.cli._output import print_json, stderr


def _read(source: str) -> Any:
    text = read_source(source)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(f"{source}: not valid JSON ({exc})") from exc


def _number(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError as exc:
        raise InputError(f"{name} must be a number (a fraction <= 1, or tokens), got {value!r}") from exc
    return int(number) if number > 1 else number


def _check_output(data: Any, messages: Any, used: str) -> None:
    """Never print an invalid request: check it as the format used and as the input looks."""
    from tokenpilot._compact import validate
    from tokenpilot._messages import detect_format

    looks = detect_format(data)
    for provider in dict.fromkeys((used, looks)):
        problems = validate(messages, provider)
        if problems:
            hint = f" (the input looks like {looks}, not {used})" if looks != used else ""
            raise InputError(
                f"the compacted conversation is not valid for {provider}{hint}: "
                f"message {problems[0].index}: {problems[0].message}"
            )


def compact(
    source: str = typer.Argument(
        "-", metavar="[FILE|-]", help="JSON messages array or request body; '-' for stdin."
    ),
    budget: int | None = typer.Option(
        None, "--budget", "-b", help="Token budget (default: the model's window)."
    ),
    trigger: str | None = typer.Option(None, "--trigger", help="Compact at this size (fraction or tokens)."),
    target: str | None = typer.Option(
        None, "--target", help="Compact down to this size (fraction or tokens)."
    ),
    model: str | None = typer.Option(None, "--model", "-m", help="Model: tokenizer, window and prices."),
    policy: str = typer.Option(
        "default", "--policy", "-p", help="default, aggressive, mask-only, window-only."
    ),
    format: str = typer.Option("auto", "--format", help="auto, openai or anthropic."),
    report: Path | None = typer.Option(None, "--report", help="Write the JSON report of what was done here."),
    as_json: bool = typer.Option(False, "--json", help="Print {messages, report} instead of the messages."),
) -> None:
    """Compact a conversation to fit its budget; prints the same shape (array or body), compacted."""
    if budget is None and trigger is None and target is None:
        raise InputError("give --budget N, or --trigger X --target Y")
    data = _read(source)
    model = model or (
        data.get("model") if isinstance(data, dict) and isinstance(data.get("model"), str) else None
    )
    thresholds: dict[str, Any] = {
        k: v
        for k, v in (("trigger", _number(trigger, "--trigger")), ("target", _number(target, "--target")))
        if v is not None
    }
    result = compact_conversation(
        data, model=model, budget=budget, policy=policy, format=format, **thresholds
    )
    _check_output(data, result.messages, result.format)
    if report is not None:
        try:
            report.write_text(json.dumps(result.as_dict(), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write the report to {report}: {exc}") from exc
    if as_json:
        print_json({"messages": result.messages, "report": result.as_dict()})
        return
    print_json(result.messages)
    stderr.print(
        f"{result.tokens_before:,} -> {result.tokens_after:,} tokens ({result.format}, "
        f"{len(result.actions)} actions)"
    )
