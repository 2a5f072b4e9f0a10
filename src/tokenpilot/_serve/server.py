"""Run the proxy in the foreground on uvicorn; SIGINT/SIGTERM stop it cleanly.

On a signal uvicorn stops accepting, lets in-flight calls finish for `shutdown_grace` seconds, then cancels
what is left (each cancelled call settles its partial usage); the lifespan shutdown then waits for
every settlement before the ledger closes, so no reservation is left behind.
"""

from __future__ import annotations

import importlib.util
import logging

from tokenpilot._serve.settings import ServeSettings

log = logging.getLogger("tokenpilot.serve")


def run(settings: ServeSettings) -> None:
    """Serve until a signal; returns when every call is settled."""
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
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        from tokenpilot._exceptions import ConfigError

        raise ConfigError(f"could not listen on {settings.host}:{settings.port} (in use, or not allowed)")
