"""The upstream client: one pooled async HTTP client, and which headers cross the proxy.

Request headers pass through as the client sent them (order and case kept), except the hop-by-hop
ones, Host and Content-Length (the transport sets those) and, when the config names a key for the
upstream, the client's own credentials.
"""

from __future__ import annotations

from typing import Any

import httpx

from tokenpilot._serve.settings import Upstream

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
    }
)
# The response body reaches the client decoded, so its encoding and length headers are re-made.
RESPONSE_DROP = HOP_BY_HOP | {b"content-encoding"}
CREDENTIALS = frozenset({b"authorization", b"x-api-key"})


def make_client(timeout: float) -> httpx.AsyncClient:
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=10.0),
        limits=httpx.Limits(max_connections=512, max_keepalive_connections=64, keepalive_expiry=30.0),
        follow_redirects=False,
        trust_env=False,  # an agent's HTTP(S)_PROXY must not loop its own traffic back through here
    )
    # httpx would add its own User-Agent, Accept and Accept-Encoding; the upstream sees the client's.
    client.headers.clear()
    return client


def request_headers(headers: list[tuple[bytes, bytes]], upstream: Upstream) -> list[tuple[bytes, bytes]]:
    key = upstream.api_key()
    kept = [(k, v) for k, v in headers if k not in HOP_BY_HOP and not (key and k in CREDENTIALS)]
    if key:
        if upstream.api == "anthropic":
            kept.append((b"x-api-key", key.encode()))
        else:
            kept.append((b"authorization", b"Bearer " + key.encode()))
    return kept


def response_headers(response: httpx.Response) -> list[tuple[bytes, bytes]]:
    return [(k.lower(), v) for k, v in response.headers.raw if k.lower() not in RESPONSE_DROP]


def build(
    client: httpx.AsyncClient,
    method: str,
    upstream: Upstream,
    path: str,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> httpx.Request:
    url = upstream.base_url + path + ("?" + query.decode("latin-1") if query else "")
    extra: dict[str, Any] = {"content": body} if body or method not in ("GET", "HEAD") else {}
    return client.build_request(method, url, headers=request_headers(headers, upstream), **extra)
