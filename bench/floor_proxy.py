"""The floor of a Python proxy on this machine: tokenpilot serve's stack with nothing of tokenpilot's.

uvicorn (uvloop, httptools) and one pooled aiohttp client, as `tokenpilot serve` uses them, forwarding
method, path, headers and body, and the answer chunk by chunk as it arrives — no parsing, no
accounting, no log line. What it adds over the direct call is what any proxy built on this stack pays
before doing anything; bench/proxy_overhead.py runs it beside tokenpilot (`--floor`).

    python bench/floor_proxy.py --port 9400 --upstream http://127.0.0.1:9311
"""

from __future__ import annotations

import argparse
from typing import Any

import aiohttp
import uvicorn

HOP_BY_HOP = {b"host", b"connection", b"keep-alive", b"transfer-encoding", b"content-length"}
DROPPED = {"content-length", "transfer-encoding", "connection"}  # bytes pass as they came, encoded or not


def app(upstream: str) -> Any:
    state: dict[str, aiohttp.ClientSession] = {}

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    connector = aiohttp.TCPConnector(limit=512, keepalive_timeout=30.0)
                    state["client"] = aiohttp.ClientSession(connector=connector, auto_decompress=False)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await state["client"].close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"] if k not in HOP_BY_HOP
        ]
        url = (
            upstream
            + scope["path"]
            + (("?" + scope["query_string"].decode()) if scope["query_string"] else "")
        )
        async with state["client"].request(scope["method"], url, headers=headers, data=bytes(body)) as answer:
            out = [
                (k.encode("latin-1"), v.encode("latin-1"))
                for k, v in answer.headers.items()
                if k.lower() not in DROPPED
            ]
            await send({"type": "http.response.start", "status": answer.status, "headers": out})
            async for chunk in answer.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

    return asgi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    uvicorn.run(
        app(args.upstream.rstrip("/")),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        proxy_headers=False,
        log_level="warning",
        timeout_keep_alive=30,
    )


if __name__ == "__main__":
    main()
