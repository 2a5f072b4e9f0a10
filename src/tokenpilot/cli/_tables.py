"""Printing for the budget/ledger/report commands: user data is never read as rich markup."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tokenpilot.cli._output import stdout


def say(text: str) -> None:
    """One line of plain text (scope names and messages may contain `[`)."""
    stdout.print(text, markup=False, highlight=False)


def table(columns: tuple[str, ...], rows: list[list[str]], right: tuple[str, ...] = ()) -> None:
    """A borderless table; cells are escaped, and nothing is cut when stdout is not a terminal."""
    grid = Table(box=None, pad_edge=False)
    for column in columns:
        grid.add_column(column, justify="right" if column in right else "left")
    for row in rows:
        grid.add_row(*(escape(cell) for cell in row))
    if stdout.is_terminal:
        stdout.print(grid)
        return
    # Piped output has no width to fit; cutting scope names there would only lose data.
    Console(file=sys.stdout, width=10_000, highlight=False, color_system=None).print(grid)
