"""`tokenpilot serve`: run the OpenAI- and Anthropic-compatible proxy in the foreground."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer

from tokenpilot._exceptions import InputError
from tokenpilot.cli._output import WARNINGS_HANDLER


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(None, "--port", help="Port to listen on (default 4141).", show_default=False),
    mode: str = typer.Option(
        None,
        "--mode",
        help="observe | enforce | optimize (default: [serve] mode, else observe).",
        show_default=False,
    ),
    db: str = typer.Option(
        None, "--db", help="Ledger URL (default: the embedded SQLite ledger).", show_default=False
    ),
    openai_base: str = typer.Option(
        None, "--openai-base", help="OpenAI upstream (default https://api.openai.com).", show_default=False
    ),
    anthropic_base: str = typer.Option(
        None,
        "--anthropic-base",
        help="Anthropic upstream (default https://api.anthropic.com).",
        show_default=False,
    ),
    config: Path = typer.Option(
        None, "--config", help="A tokenpilot.toml whose [serve] table to use.", show_default=False
    ),
    workers: int = typer.Option(
        1, "--workers", help="Processes accepting on the port, sharing the ledger's database (default 1)."
    ),
) -> None:
    """Proxy OpenAI and Anthropic calls: account for, plan and enforce every one, with no agent change."""
    from tokenpilot._serve.settings import MODES, load_settings

    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if mode is not None and mode not in MODES:
        raise InputError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    settings = load_settings(
        config_file=config,
        host=host,
        port=port,
        mode=mode,
        db=db,
        openai_base=openai_base,
        anthropic_base=anthropic_base,
    )
    # The server's line names none of these: skip gathering them per record (the logging docs'
    # "Optimization" switches; ~3 of the ~14 µs a [TOKEN_BUDGET] line costs here).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("tokenpilot")
    for other in [h for h in logger.handlers if h.name == WARNINGS_HANDLER]:
        logger.removeHandler(other)  # the server's own lines carry every level, timestamped
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        from tokenpilot._serve.server import run
    except ImportError as exc:
        raise InputError(
            f"tokenpilot serve needs its extra: pip install 'tokenpilot[serve]' ({exc.name} missing)"
        ) from None
    run(settings, workers=workers)
