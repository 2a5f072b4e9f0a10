"""`tokenpilot spill show HANDLE`: the whole tool output a marker's handle names, byte for byte."""

from __future__ import annotations

import re
import sys

import typer

from tokenpilot._exceptions import InputError

app = typer.Typer(help="Outputs kept whole when a marker replaced them (trim, compact, the proxy).")
_HANDLE = re.compile(r"^[0-9a-f]{32}$")


def spill_path(handle: str) -> str:
    """The file holding `handle`'s output (the spill store of the `[trim]` config)."""
    from tokenpilot._trim._settings import trim_settings
    from tokenpilot._trim._spill import default_spill_dir

    if not _HANDLE.match(handle):
        raise InputError(f"not a spill handle: {handle!r} (32 hex digits, as a marker names it)")
    directory = trim_settings().spill_dir or default_spill_dir()
    return str(directory / f"{handle}.txt")


@app.command("show")
def show(handle: str = typer.Argument(..., help="The handle a marker names.")) -> None:
    """Print the original output behind HANDLE (exactly its bytes)."""
    path = spill_path(handle)
    try:
        with open(path, "rb") as handle_file:
            data = handle_file.read()
    except FileNotFoundError as exc:
        raise InputError(f"no spilled output {handle} (expired, or kept on another machine)") from exc
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
