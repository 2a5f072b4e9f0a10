"""The upstream client: one pooled aiohttp session, which headers cross the proxy, and its errors.

aiohttp's client costs about a quarter of httpx's CPU per request here (0.19 against 0.8 ms on
this machine, measured on the fake upstream), which is most of the proxy's own budget per call.

Request headers pass through as the client sent them (order and case kept), except the hop-by-hop
ones, Host and Content-Length (the transport sets those) and, when the config names a key for the
upstream, the client's own credentials. The session adds no header of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from multidict import CIMultiDict

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
_NO_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


class UpstreamError(Exception):
    """The upstream could not be reached, did not answer in time, or broke off its answer."""


class UpstreamUnreachable(UpstreamError):
    pass


class UpstreamTimeout(UpstreamError):
    pass


class UpstreamBroke(UpstreamError):
    pass


def make_client(timeout: float) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=512, keepalive_timeout=30.0, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=timeout),
        skip_auto_headers=_NO_AUTO_HEADERS,  # the upstream sees the client's headers, not ours
        trust_env=False,  # an agent's HTTP(S)_PROXY must not loop its own traffic back through here
        # One session serves every client: a cookie the upstream sets (a CDN's) goes back to the
        # client that got it, never into the next client's request (and no jar to match per request).
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=True,
    )


def request_headers(headers: list[tuple[bytes, bytes]], upstream: Upstream) -> CIMultiDict[str]:
    key = upstream.api_key()
    kept: CIMultiDict[str] = CIMultiDict()
    for k, v in headers:
        if k not in HOP_BY_HOP and not (key and k in CREDENTIALS):
            kept.add(k.decode("latin-1"), v.decode("latin-1"))
    if key:
        if upstream.api == "anthropic":
            kept.add("x-api-key", key)
        else:
            kept.add("authorization", "Bearer " + key)
    return kept


class UpstreamResponse:
    """An answer under way: status and headers now, the body whole or chunk by chunk."""

    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status

    def header(self, name: str) -> str | None:
        return self._response.headers.get(name)

    def headers(self) -> dict[str, str]:
        return dict(self._response.headers)

    def client_headers(self, date: bytes) -> list[tuple[bytes, bytes]]:
        """The headers to relay; `date` is added when the upstream sent no Date (RFC 9110 6.6.1)."""
        head = [(k.lower(), v) for k, v in self._response.raw_headers if k.lower() not in RESPONSE_DROP]
        if not any(k == b"date" for k, _ in head):
            head.insert(0, (b"date", date))
        return head

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamBroke(type(exc).__name__) from exc

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamBroke(type(exc).__name__) from exc

    def close(self) -> None:
        self._response.release()


async def send(
    client: aiohttp.ClientSession,
    method: str,
    upstream: Upstream,
    path: str,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> UpstreamResponse:
    """Send one request; its status and headers are in when this returns, the body is not read."""
    url = upstream.base_url + path + ("?" + query.decode("latin-1") if query else "")
    try:
        response = await client.request(
            method,
            url,
            data=body if body or method not in ("GET", "HEAD") else None,
            headers=request_headers(headers, upstream),
            allow_redirects=False,
        )
    except TimeoutError as exc:
        raise UpstreamTimeout("no answer in time") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamUnreachable(type(exc).__name__) from exc
    return UpstreamResponse(response)
