"""Run the proxy in the foreground on uvicorn; SIGINT/SIGTERM stop it cleanly.

On a signal uvicorn stops accepting, lets in-flight calls finish for `shutdown_grace` seconds, then cancels
what is left (each cancelled call settles its partial usage); the lifespan shutdown then waits for
every settlement before the ledger closes, so no reservation is left behind.

With `workers > 1` the parent binds the listening socket once and forks that many workers, each a
whole proxy (its own loop, upstream pool and ledger connection) accepting on the shared socket; the
ledger is shared through its database (SQLite and PostgreSQL are both safe across processes). The
parent passes SIGINT/SIGTERM on and returns when every worker has settled and exited.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import socket
import sys
from typing import Any

from tokenpilot._serve.settings import ServeSettings

log = logging.getLogger("tokenpilot.serve")


def _server(settings: ServeSettings) -> Any:
    import uvicorn

    from tokenpilot._serve.app import Proxy

    proxy = Proxy(settings)
    config = uvicorn.Config(
        proxy.asgi(),
        host=settings.host,
        port=settings.port,
        # uvloop and httptools when present (uvicorn[standard]): the fastest event loop and HTTP parser.
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        lifespan="on",
        access_log=False,  # the proxy logs one [TOKEN_BUDGET] line per call itself
        proxy_headers=False,  # the proxy is the first hop: no X-Forwarded-* rewriting per request
        log_level="warning",
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace)),
        timeout_keep_alive=30,
    )
    return uvicorn.Server(config)


def _not_listening(settings: ServeSettings) -> Exception:
    from tokenpilot._exceptions import ConfigError

    return ConfigError(f"could not listen on {settings.host}:{settings.port} (in use, or not allowed)")


def run(settings: ServeSettings, *, workers: int = 1) -> None:
    """Serve until a signal; returns when every call is settled."""
    if workers <= 1:
        server = _server(settings)
        server.run()
        if not server.started:
            raise _not_listening(settings)
        return
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((settings.host, settings.port))
    except OSError:
        listener.close()
        raise _not_listening(settings) from None
    listener.listen(2048)
    listener.set_inheritable(True)
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker: one whole proxy on the shared socket
            code = 0
            # uvicorn re-raises the signal it stopped on once it is done: here that must not kill
            # the worker before it exits with its own status.
            signal.signal(signal.SIGTERM, _ignore)
            signal.signal(signal.SIGINT, _ignore)
            try:
                server = _server(settings)
                server.run(sockets=[listener])
                code = 0 if server.started else 1
            except BaseException:  # a worker must never return into the parent's code
                log.exception("tokenpilot serve: a worker failed")
                code = 1
            finally:
                logging.shutdown()
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children.append(pid)
    listener.close()

    def forward(signum: int, _frame: object) -> None:
        # SIGTERM either way: a worker that also got the terminal's SIGINT would take a second
        # SIGINT as "stop now, unsettled".
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    failed = 0
    for child in children:
        while True:
            try:
                _, status = os.waitpid(child, 0)
                break
            except InterruptedError:
                continue
        failed += os.waitstatus_to_exitcode(status) != 0
    if failed:
        from tokenpilot._exceptions import TokenpilotError

        raise TokenpilotError(f"{failed} of {workers} workers failed (see the log above)")


def _ignore(_signum: int, _frame: object) -> None:
    pass
