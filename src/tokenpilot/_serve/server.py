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
from typing import Any, NoReturn

from tokenpilot._serve.settings import ServeSettings

log = logging.getLogger("tokenpilot.serve")
_STOPS = {signal.SIGTERM, signal.SIGINT}


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
        # A relayed answer carries the upstream's own Date and Server: uvicorn's would make two of each.
        server_header=False,
        date_header=False,
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
    # Built before the fork: each worker starts at once with its modules already loaded (shared
    # pages); its ledger, upstream pool and loop are made in the worker, at its startup.
    server = _server(settings)
    children: list[int] = []
    # Signals wait until every worker is forked and the parent forwards them (each worker unblocks
    # once it has its own handler), so a stop at any moment reaches every worker.
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker: one whole proxy on the shared socket
            _worker(server, listener)
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
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)
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


def _worker(server: Any, listener: socket.socket) -> NoReturn:
    """One forked worker: serve on the shared socket, then exit with its own status."""
    code = 0
    asked: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        # Before uvicorn takes the signals (a stop during startup) and after it gave them back (it
        # re-raises the one it stopped on): ask it to stop, never kill the worker unsettled.
        asked.append(signum)
        server.should_exit = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)
    try:
        server.run(sockets=[listener])
        code = 0 if server.started or asked else 1  # neither started nor stopped: it failed
    except BaseException:  # a worker must never return into the parent's code
        log.exception("tokenpilot serve: a worker failed")
        code = 1
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
