"""`tokenpilot models`: the registry of limits and prices, and where each fact came from."""

from __future__ import annotations

import typer
from rich.table import Table

from tokenpilot._models import get_model, list_models
from tokenpilot._models._registry import ModelInfo, bundled_data
from tokenpilot.cli._output import print_json, stdout

app = typer.Typer(help="Model limits, prices and tokenizers.", no_args_is_help=True)


def _price(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.4g}"


@app.command("list")
def list_command(
    provider: str | None = typer.Option(
        None, "--provider", "-p", help="Only this provider (openai, anthropic, google, …)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List known models with window, max output and prices per million tokens."""
    infos = list_models(provider)
    if as_json:
        print_json([m.as_dict() for m in infos])
        return
    table = Table(box=None, pad_edge=False)
    for column in ("model", "provider", "window", "max out", "in $/M", "out $/M", "tokenizer"):
        table.add_column(
            column, justify="right" if column in ("window", "max out", "in $/M", "out $/M") else "left"
        )
    for m in infos:
        table.add_row(
            m.name,
            m.provider or "?",
            f"{m.context_window:,}",
            f"{m.max_output_tokens:,}" if m.max_output_tokens else "?",
            _price(m.input_per_mtok),
            _price(m.output_per_mtok),
            m.tokenizer,
        )
    stdout.print(table)
    data = bundled_data()
    stdout.print(f"{len(infos)} models; bundled data: {data['source']}, {data['date']}")


def _show_rows(m: ModelInfo) -> list[tuple[str, str, str]]:
    facts = m.as_dict()
    rows = []
    for key in (
        "provider",
        "context_window",
        "max_output_tokens",
        "input_per_mtok",
        "output_per_mtok",
        "cache_read_per_mtok",
        "cache_write_per_mtok",
        "tokenizer",
    ):
        value = facts[key]
        if value is None:
            shown = "unknown"
        elif isinstance(value, int):
            shown = f"{value:,}"
        elif isinstance(value, float):
            shown = f"${value:,.4g}"
        else:
            shown = str(value)
        rows.append((key, shown, m.sources.get(key, "unknown")))
    return rows


@app.command("show")
def show_command(
    name: str = typer.Argument(..., help="Model name, e.g. gpt-4o, openai/gpt-4o, claude-sonnet-4-5."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one model: every field and the source that supplied it."""
    m = get_model(name)
    if as_json:
        print_json(m.as_dict())
        return
    table = Table(title=m.name, box=None, pad_edge=False, title_justify="left")
    table.add_column("field")
    table.add_column("value", justify="right")
    table.add_column("source")
    for row in _show_rows(m):
        table.add_row(*row)
    stdout.print(table)
    if not m.price_known:
        stdout.print("price unknown: costs for this model are reported as unknown, never $0")
    if not m.exact:
        stdout.print(f"token counts are estimates ({m.tokenizer}), not exact")
