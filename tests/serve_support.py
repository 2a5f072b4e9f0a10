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


# --- fixtures (import them into a test module to use them) ----------------------------------------

import pytest  # noqa: E402

from fake_upstream import FakeUpstream  # noqa: E402


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture
def upstream(fake: FakeUpstream) -> FakeUpstream:
    fake.clear()
    return fake


@pytest.fixture
def ledger(tmp_path: Any) -> Iterator[tp.Ledger]:
    opened = tp.open_ledger(str(tmp_path / "ledger.db"))
    yield opened
    opened.close()


def reported_tokens(api: str, usage: dict[str, Any]) -> dict[str, int]:
    """What the fake reported, in the ledger's convention (input counts cached tokens too)."""
    if api == "openai_chat":
        return {
            "input_tokens": usage["prompt_tokens"],
            "output_tokens": usage["completion_tokens"],
            "cache_read_tokens": usage["prompt_tokens_details"]["cached_tokens"],
            "cache_write_tokens": 0,
            "reasoning_tokens": usage["completion_tokens_details"]["reasoning_tokens"],
        }
    if api == "openai_responses":
        return {
            "input_tokens": usage["input_tokens"],
            "output_tokens": usage["output_tokens"],
            "cache_read_tokens": usage["input_tokens_details"]["cached_tokens"],
            "cache_write_tokens": 0,
            "reasoning_tokens": usage["output_tokens_details"]["reasoning_tokens"],
        }
    read, write = usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]
    return {
        "input_tokens": usage["input_tokens"] + read + write,
        "output_tokens": usage["output_tokens"],
        "cache_read_tokens": read,
        "cache_write_tokens": write,
        "reasoning_tokens": 0,
    }


def recorded_tokens(record: Any) -> dict[str, int]:
    return {
        name: getattr(record, name)
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
        )
    }
