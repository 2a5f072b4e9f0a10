"""`tokenpilot trim`: fit a tool's output (stdin or files) into a token budget."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import BinaryIO

import typer

from tokenpilot._exceptions import InputError
from tokenpilot.cli._input import is_binary, parse_optional_budget
from tokenpilot.cli._output import print_json, stderr


def _refuse_binary(stream: BinaryIO, name: str) -> None:
    """An InputError when the stream starts like a binary file; the bytes it looked at stay unread."""
    head = stream.peek(8192)[:8192] if isinstance(stream, io.BufferedReader) else b""
    if not head and stream.seekable():
        head = stream.read(8192)
        stream.seek(0)
    if is_binary(head):
        raise InputError(f"{name} is binary (a NUL byte in its first 8 KiB); trim reads text")


def trim(
    files: list[str] = typer.Argument(None, help="Files to trim, each on its own; '-' or nothing for stdin."),
    budget_text: str | None = typer.Option(
        None,
        "--budget",
        "-b",
        metavar="TOKENS",
        help="Token budget: 800, 2k (default: the tool's, from [trim] config).",
    ),
    tool: str | None = typer.Option(
        None, "--tool", "-t", help="The tool that produced the output (pytest, gcc, 'git diff', …)."
    ),
    mode: str = typer.Option("auto", "--mode", help="auto | full | head_tail | errors_only | smart."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model whose tokenizer counts."),
    spill: bool | None = typer.Option(
        None, "--spill/--no-spill", help="Write the whole output to a file when something is cut."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON report with the text."),
    report: bool = typer.Option(False, "--report", help="Print a one-line report on stderr."),
) -> None:
    """Trim a tool's output to a token budget: `pytest 2>&1 | tokenpilot trim --budget 800`."""
    from tokenpilot._trim import TrimResult, trim_stream

    budget = parse_optional_budget(budget_text, "--budget", minimum=0)
    targets = list(files or [])
    if not targets:
        if sys.stdin.isatty():
            raise InputError("pipe a command's output to trim, or give FILE arguments")
        targets = ["-"]
    results: list[tuple[str, TrimResult]] = []
    for target in targets:
        if target == "-":
            _refuse_binary(sys.stdin.buffer, "stdin")
            result = trim_stream(sys.stdin.buffer, budget, tool=tool, mode=mode, model=model, spill=spill)
        else:
            path = Path(target)
            if path.is_dir():
                raise InputError(f"{target} is a directory; trim reads a tool's output (a file or stdin)")
            if not path.is_file():
                raise InputError(f"no such file: {target}")
            try:
                with path.open("rb") as handle:
                    _refuse_binary(handle, target)
                    result = trim_stream(handle, budget, tool=tool, mode=mode, model=model, spill=spill)
            except OSError as exc:
                raise InputError(f"cannot read {target}: {exc}") from None
        results.append((target, result))
    if as_json:
        reports = [{"source": source, **result.as_dict()} for source, result in results]
        print_json(reports[0] if len(reports) == 1 else reports)
        return
    for n, (source, result) in enumerate(results):
        if len(results) > 1:
            sys.stdout.write(("\n" if n else "") + f"==> {source} <==\n")
        sys.stdout.write(result.text if result.text.endswith("\n") or not result.text else result.text + "\n")
        if report:
            stderr.print(
                f"{source}: {result.tokens_before:,} -> {result.tokens:,} tokens (budget {result.budget:,}, "
                f"{result.mode}, {result.format or 'as is'}, {result.omitted.lines:,} lines omitted)"
            )
