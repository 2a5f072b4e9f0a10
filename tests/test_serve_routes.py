"""The proxy's routing: the model-call routes by an exact (method, path) lookup, everything else by
Starlette's router, with the same answer for every request as the router alone would give.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from starlette.routing import Mount, Route

from serve_support import settings_for
from tokenpilot._serve import app as serve_app
from tokenpilot._serve.app import Proxy, ProxyApp

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]
PATHS = [
    "/",
    "/v1/chat/completions",
    "/v1/responses",
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/v1/models",
    "/v1/chat/completions/",
    "/v1/messages/count_tokens/",
    "/v1",
    "/v1/",
    "/tokenpilot/spill/abc123",
    "/tokenpilot/spill/",
    "/tokenpilot",
    "/nope",
    "/nope/",
    "//v1/messages",
    "/V1/messages",
    "",
]
HOT = [
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/responses"),
    ("POST", "/v1/messages"),
    ("POST", "/v1/messages/count_tokens"),
    ("GET", "/"),
    ("HEAD", "/"),
]


def _recorder(name: str) -> Any:
    """A handler that answers with its name and what of the scope a real handler reads."""

    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen = {
            "handler": name,
            "method": scope["method"],
            "path": scope["path"],
            "root_path": scope.get("root_path"),
            "handle": scope.get("path_params", {}).get("handle"),
        }
        body = orjson.dumps(seen)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-handler", name.encode())]})
        await send({"type": "http.response.body", "body": body})

    return handler


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> ProxyApp:
    """The proxy's ASGI app with every handler replaced by a recorder (no upstream, no ledger)."""
    proxy = Proxy(settings_for("http://127.0.0.1:9"))

    async def model_call(proxy: Proxy, api: str, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await _recorder(api)(scope, receive, send)

    monkeypatch.setattr(serve_app, "_model_call", model_call)
    for name in ("_root", "_count_tokens", "_spill", "_passthrough"):
        setattr(proxy, name, _recorder(name))
    app = proxy.asgi()
    assert isinstance(app, ProxyApp)
    return app


def _answer(app: Any, method: str, path: str, root_path: str = "") -> tuple[int, list[Any], bytes]:
    """(status, headers, body) of one request sent straight to the ASGI callable `app`."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8787"), (b"content-length", b"2")],
        "server": ("127.0.0.1", 8787),
        "client": ("127.0.0.1", 50000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], sorted(start.get("headers", [])), body


@pytest.mark.parametrize("root_path", ["", "/proxy"])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", METHODS)
def test_every_request_gets_the_answer_the_router_alone_gives(
    routed: ProxyApp, method: str, path: str, root_path: str
) -> None:
    for full in {root_path + path, path}:
        if not full.startswith("/"):
            continue
        assert _answer(routed, method, full, root_path) == _answer(routed.router, method, full, root_path)


def test_the_hot_routes_reach_their_handlers_without_the_router_matching_a_route(
    routed: ProxyApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    matched: list[str] = []
    for kind in (Route, Mount):
        real = kind.matches
        monkeypatch.setattr(
            kind, "matches", lambda self, scope, real=real: matched.append(self.path) or real(self, scope)
        )
    handlers = {}
    for method, path in HOT:
        status, headers, _ = _answer(routed, method, path)
        assert status == 200
        handlers[(method, path)] = dict(headers)[b"x-handler"].decode()
    assert matched == []
    assert handlers == {
        ("POST", "/v1/chat/completions"): "openai_chat",
        ("POST", "/v1/responses"): "openai_responses",
        ("POST", "/v1/messages"): "anthropic_messages",
        ("POST", "/v1/messages/count_tokens"): "_count_tokens",
        ("GET", "/"): "_root",
        ("HEAD", "/"): "_root",
    }
    # Everything else still goes through the router: the pass-through, a 405, a path under a root_path.
    assert _answer(routed, "GET", "/v1/models")[0] == 200 and matched
    matched.clear()
    assert _answer(routed, "POST", "/")[0] == 405 and matched
    matched.clear()
    assert _answer(routed, "POST", "/proxy/v1/messages", "/proxy")[0] == 200 and matched
