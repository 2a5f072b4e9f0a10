"""`tokenpilot compact`: a conversation (messages array or request body) compacted to fit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from tokenpilot._config import load_config
from tokenpilot._exceptions import InputError
from tokenpilot._models import get_model
from tokenpilot.cli._input import parse_json, parse_optional_budget, parse_threshold, read_source
from tokenpilot.cli._output import print_json, stderr


def _thresholds(
    trigger: str | None, target: str | None, budget: int | None, window: int
) -> dict[str, float | int]:
    """--trigger / --target (else `[compact] trigger/target` of the config), checked against each other."""
    config = load_config().section("compact")
    given = {"trigger": parse_threshold(trigger, "--trigger"), "target": parse_threshold(target, "--target")}
    chosen = {k: v for k, v in given.items() if v is not None}
    room = budget or window

    def tokens(value: float | int) -> int:
        return int(value * room) if value <= 1 else int(value)

    def said(name: str) -> str:
        value = chosen.get(name, config.get(name))
        where = f"--{name}" if name in chosen else "[compact] " + name
        shown = f"{value:,}" if isinstance(value, int) and value > 1 else f"{value:g}"
        return f"{where} {shown}"

    effective = {k: chosen.get(k, config.get(k)) for k in ("trigger", "target")}
    values = {k: v for k, v in effective.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    if "trigger" in values and "target" in values and tokens(values["target"]) > tokens(values["trigger"]):
        raise InputError(
            f"{said('target')} is above {said('trigger')}: a compaction would end larger than where it starts"
        )
    for name, value in values.items():
        if tokens(value) > room:
            limit = f"--budget {budget:,}" if budget else f"the model's window {window:,}"
            raise InputError(f"{said(name)} is above {limit}: it could never be reached")
    return chosen


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
        "-", metavar="FILE", help="JSON messages array or request body; '-' for stdin."
    ),
    budget_text: str | None = typer.Option(
        None,
        "--budget",
        "-b",
        metavar="TOKENS",
        help="Token budget: 20000, 16k (default: the model's window).",
    ),
    trigger: str | None = typer.Option(
        None, "--trigger", help="Compact at this size: a fraction of the budget (0.8) or tokens (12k)."
    ),
    target: str | None = typer.Option(
        None, "--target", help="Compact down to this size: a fraction of the budget (0.5) or tokens (8k)."
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
    from tokenpilot._compact import compact as compact_conversation

    budget = parse_optional_budget(budget_text, "--budget")
    configured = load_config().section("compact")
    if budget is None and trigger is None and target is None and not {"trigger", "target"} & set(configured):
        raise InputError(
            "give --budget N, or --trigger X --target Y (or [compact] trigger/target in the config)"
        )
    data = parse_json(read_source(source), source)
    model = model or (
        data.get("model") if isinstance(data, dict) and isinstance(data.get("model"), str) else None
    )
    thresholds: dict[str, Any] = _thresholds(trigger, target, budget, get_model(model).context_window)
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
