"""Shared parts of the proxy tests: a fake upstream and a real proxy, both real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import tokenpilot as tp
from tokenpilot._serve.settings import ServeSettings, Upstream


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settings_for(base_url: str, **changes: Any) -> ServeSettings:
    """Proxy settings whose two upstreams are the fake at `base_url`."""
    upstreams = (Upstream("openai", "openai", base_url), Upstream("anthropic", "anthropic", base_url))
    return replace(ServeSettings(port=free_port(), upstreams=upstreams), **changes)


class RunningProxy:
    def __init__(self, proxy: Any, server: Any, thread: threading.Thread, settings: ServeSettings) -> None:
        self.proxy = proxy
        self.server = server
        self.thread = thread
        self.settings = settings

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    def wait_settled(self, timeout: float = 10.0) -> None:
        """Settlement runs after the response: wait until the proxy has none under way."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proxy.in_flight == 0 and self.proxy.accountant.pending == 0:
                return
            time.sleep(0.01)
        raise AssertionError("calls still settling after 10 s")


@contextmanager
def running_proxy(settings: ServeSettings, ledger: tp.Ledger | None = None) -> Iterator[RunningProxy]:
    import uvicorn

    from tokenpilot._serve.app import Proxy

    proxy = Proxy(settings, ledger=ledger)
    config = uvicorn.Config(
        proxy.asgi(), host=settings.host, port=settings.port, log_level="critical", lifespan="on",
        timeout_graceful_shutdown=5,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("proxy did not start")
        time.sleep(0.01)
    try:
        yield RunningProxy(proxy, server, thread, settings)
    finally:
        server.should_exit = True
        thread.join(15)
