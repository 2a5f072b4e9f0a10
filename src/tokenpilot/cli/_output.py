"""Output shared by the commands: JSON for programs, rich tables for people, one-line errors."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from rich.console import Console
from rich.text import Text

# the name of the stderr handler the CLI gives the library's warnings (serve replaces it with its own)
WARNINGS_HANDLER = "tokenpilot-cli-warnings"

# Piped output is for files and other programs: do not cut table cells to an 80-column guess.
stdout = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """JSON on stdout, one document, stable key order as given."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def fail(message: str, code: int = 1) -> NoReturn:
    """One clear line on stderr, then exit with `code`; never a traceback."""
    stderr.print(Text.assemble(("error: ", "bold red"), message))
    raise SystemExit(code)
