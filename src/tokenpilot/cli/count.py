"""`tokenpilot count`: tokens in files, directories (honouring .gitignore) or stdin."""

from __future__ import annotations

import codecs
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import typer
from rich.table import Table

from tokenpilot._exceptions import InputError
from tokenpilot._models import get_model
from tokenpilot._tokens import Tokenizer, tokenizer_for
from tokenpilot._tokens._stream import STREAM_CHUNK_CHARS, count_stream
from tokenpilot._walk import list_files, read_text
from tokenpilot.cli._input import is_binary
from tokenpilot.cli._output import print_json, stdout

READ_BYTES = 1 << 20


def _decoded(stream: BinaryIO, first: bytes) -> Iterator[str]:
    """The stream's text, piece by piece, decoded as UTF-8 (bad bytes replaced, as for small files)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    data = first
    while data:
        yield decoder.decode(data)
        data = stream.read(READ_BYTES)
    yield decoder.decode(b"", final=True)


def _count_stream(stream: BinaryIO, tokenizer: Tokenizer) -> int | None:
    """Tokens of a binary stream in bounded memory, or None when it is binary."""
    first = stream.read(READ_BYTES)
    if is_binary(first):
        return None
    return count_stream(_decoded(stream, first), tokenizer)


def count(
    paths: list[str] = typer.Argument(
        None, help="Files or directories; '-' (or nothing, with piped input) for stdin."
    ),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Model whose tokenizer counts (default: gpt-4o)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON report."),
) -> None:
    """Count tokens in files, directories or stdin, exactly for the model's tokenizer."""
    info = get_model(model)
    tokenizer = tokenizer_for(info.name)
    counted: list[tuple[str, int]] = []
    skipped: list[tuple[str, str]] = []
    targets = list(paths or [])
    if not targets:
        if sys.stdin.isatty():
            raise InputError("give a PATH to count, or pipe text on stdin ('-')")
        targets = ["-"]
    for target in targets:
        if target == "-":
            stdin = sys.stdin.buffer
            counted.append(("-", count_stream(_decoded(stdin, stdin.read(READ_BYTES)), tokenizer)))
            continue
        root = Path(target)
        if not root.exists():
            raise InputError(f"no such file or directory: {target}")
        for path in list_files(root):
            shown = path.as_posix() if root.is_file() else (root / path.relative_to(root)).as_posix()
            if path.stat().st_size > STREAM_CHUNK_CHARS:  # big files stream: memory bounded, same count
                try:
                    with path.open("rb") as handle:
                        tokens = _count_stream(handle, tokenizer)
                except OSError as exc:
                    skipped.append((shown, f"unreadable: {exc.strerror or exc}"))
                    continue
                if tokens is None:
                    skipped.append((shown, "binary"))
                else:
                    counted.append((shown, tokens))
                continue
            text_file = read_text(path)
            if text_file.text is None or text_file.problem == "binary":
                skipped.append((shown, text_file.problem or "unreadable"))
            else:
                counted.append((shown, tokenizer.count(text_file.text)))
    counted.sort(key=lambda item: (-item[1], item[0]))
    total = sum(tokens for _, tokens in counted)
    if as_json:
        print_json(
            {
                "model": info.name,
                "tokenizer": tokenizer.name,
                "exact": tokenizer.exact,
                "total": total,
                "files": [{"path": p, "tokens": t} for p, t in counted],
                "skipped": [{"path": p, "reason": r} for p, r in skipped],
            }
        )
        return
    table = Table(box=None, show_footer=len(counted) > 1, pad_edge=False)
    table.add_column("tokens", justify="right", footer=f"{total:,}")
    table.add_column("path", footer=f"total ({len(counted)} files)")
    for path_text, tokens in counted:
        table.add_row(f"{tokens:,}", path_text)
    stdout.print(table)
    label = "exact" if tokenizer.exact else "estimate"
    stdout.print(f"{total:,} tokens ({info.name}, {tokenizer.name}, {label})")
    for path_text, reason in skipped:
        stdout.print(f"skipped {path_text}: {reason}")
