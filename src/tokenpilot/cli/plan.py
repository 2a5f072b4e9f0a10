"""`tokenpilot plan` (how to make one call) and `tokenpilot cost compare` (a workload across models)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from tokenpilot import _account
from tokenpilot._exceptions import InputError
from tokenpilot.cli._input import parse_json, read_source
from tokenpilot.cli._output import print_json, stderr, stdout

if TYPE_CHECKING:
    from tokenpilot._plan._cost import CostComparison

cost_app = typer.Typer(help="Price token usage across models and routing policies.", no_args_is_help=True)


def _read_request(source: str) -> Any:
    text = read_source(source, "request file")
    try:
        return parse_json(text, source) if text.lstrip().startswith(("{", "[")) else json.loads(text)
    except json.JSONDecodeError as exc:
        if source.endswith(".json"):
            raise InputError(f"{source}: invalid JSON ({exc.msg}, line {exc.lineno})") from None
        return text  # a plain prompt


def plan(
    request: str = typer.Argument(
        ..., help="Request body (OpenAI Chat or Anthropic Messages JSON), a prompt file, or '-'."
    ),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Model to plan for (default: routing, then the request's)."
    ),
    phase: str | None = typer.Option(
        None, "--phase", "-p", help="Phase of the work (for learned max_tokens)."
    ),
    task_type: str | None = typer.Option(
        None, "--task-type", help="tool_call, code_generation, explanation, planning, review or unknown."
    ),
    complexity: str | None = typer.Option(None, "--complexity", help="low, medium or high."),
    write: list[str] = typer.Option(None, "--write", "-w", help="A file the call will write (repeatable)."),
    db: str | None = typer.Option(
        None, "--db", help="Ledger database to learn max_tokens from (URL or SQLite path)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
    strict: bool = typer.Option(
        False, "--strict", help="Exit 3 when the answer is squeezed (compaction needed), not only warn."
    ),
) -> None:
    """Plan one call: model, max_tokens, prompt tier and output mode, with the reason for each.

    Exits 3 when the input leaves less than the minimum answer room; when the room only caps
    max_tokens below what was asked for, it warns (and exits 3 with --strict).
    """
    from tokenpilot._plan import plan_call

    body = _read_request(request)
    if not isinstance(body, dict | list | str):
        raise InputError("a request is a JSON object (a request body), a messages array or a prompt")
    with contextlib.ExitStack() as stack:
        history = stack.enter_context(_account.open_ledger(db)) if db else None
        call = plan_call(
            body,
            model,
            task_type=task_type,
            complexity=complexity,
            phase=phase,
            files_to_write=write or None,
            ledger=history,
        )
    if as_json:
        print_json(call.as_dict())
    else:
        label = "exact" if call.input_exact else "estimate"
        stdout.print(
            escape(
                f"{call.model}: {call.input_tokens:,} input tokens ({label}), "
                f"max_tokens {call.max_tokens:,}, "
                f"headroom {call.headroom:,} of {call.context_window:,}"
            )
        )
        table = Table(box=None, pad_edge=False)
        table.add_column("choice")
        table.add_column("value")
        table.add_column("why")
        for reason in call.reasons:
            table.add_row(escape(reason.choice), escape(reason.value), escape(reason.why))
        stdout.print(table)
        if call.chain:
            stdout.print(escape(f"failover chain: {' -> '.join(call.chain)}"))
    if not call.fits:
        stderr.print(
            f"the input must shrink by {call.min_output_shortfall:,} tokens before this call can answer "
            f"({call.compaction_needed:,} for the full {call.wanted_max_tokens:,}-token answer)"
        )
        raise typer.Exit(3)
    if call.advice is not None:
        stderr.print(escape(f"warning: the answer is squeezed: {call.advice}"))
        if strict:
            raise typer.Exit(3)


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.4f}"


def _comparison_json(result: CostComparison) -> dict[str, Any]:
    return {
        "baseline": result.baseline,
        "calls": result.calls,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "policies": [
            {
                "policy": p.policy,
                "cost_usd": p.cost,
                "saving_usd": p.saving,
                "saving_share": p.saving_share,
                "unknown_price": list(p.unknown_price),
                "calls_by_model": p.calls_by_model,
                "cost_by_phase": p.cost_by_phase,
            }
            for p in result.policies
        ],
    }


@cost_app.command("compare")
def compare(
    workload: Path = typer.Option(
        ..., "--workload", help="Per-phase token table (CSV/JSON) or ledger export (JSONL)."
    ),
    model: list[str] = typer.Option(None, "--model", "-m", help="Model to price everything on (repeatable)."),
    baseline: str | None = typer.Option(None, "--baseline", help="Policy the savings are measured against."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Price a workload on each model alone and under the routing rules, with the saving of each."""
    from tokenpilot._plan import compare_costs, load_workload, routing_settings

    rows = load_workload(workload)
    routing = routing_settings()
    models = list(model or [])
    if not models:
        recorded = [r.model for r in rows if r.model]
        models = list(dict.fromkeys([*recorded, *routing.tiers.values()]))
    result = compare_costs(rows, models, routing, baseline=baseline)
    if as_json:
        print_json(_comparison_json(result))
        return
    stdout.print(
        escape(
            f"{result.calls:,} calls, {result.input_tokens:,} input and "
            f"{result.output_tokens:,} output tokens; "
            f"baseline: {result.baseline or 'none (no known price)'}"
        )
    )
    table = Table(box=None, pad_edge=False)
    table.add_column("policy")
    table.add_column("cost", justify="right")
    table.add_column("saving", justify="right")
    table.add_column("models (calls)")
    for p in result.policies:
        if p.saving is None:
            saving = "-" if p.policy == result.baseline else "unknown"
        else:
            share = f" ({p.saving_share:+.1%})" if p.saving_share is not None else ""
            saving = f"{_money(p.saving)}{share}"
        mix = ", ".join(
            f"{m} ({c:,})" for m, c in sorted(p.calls_by_model.items(), key=lambda i: (-i[1], i[0]))
        )
        table.add_row(escape(p.policy), _money(p.cost), saving, escape(mix))
    stdout.print(table)
    unknown = sorted({m for p in result.policies for m in p.unknown_price})
    if unknown:
        stdout.print(
            escape(f"unknown price: {', '.join(unknown)} (set its price in [models.NAME] of the config)")
        )
