"""For `proxy_replay.py --transport http`: a fake upstream that answers each call with the
recorded assistant message and keeps what it received, and a real `tokenpilot serve` process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _openai_reply(message: dict[str, Any], model: str) -> dict[str, Any]:
    answer = {k: message[k] for k in ("role", "content", "tool_calls") if k in message}
    return {
        "id": "chatcmpl-replay",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": answer, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _anthropic_reply(message: dict[str, Any], model: str) -> dict[str, Any]:
    return {
        "id": "msg_replay",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": message["content"],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }


class RecordingUpstream:
    """An ASGI upstream on 127.0.0.1 (uvicorn, in a thread): `reply` is what the next call gets."""

    def __init__(self) -> None:
        self.port = free_port()
        self.reply: dict[str, Any] = {}
        self.received: list[dict[str, Any]] = []
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = json.loads(b"".join(chunks) or b"{}")
        self.received.append(body)
        model = str(body.get("model", ""))
        answer = (
            _anthropic_reply(self.reply, model)
            if scope["path"].endswith("/messages")
            else _openai_reply(self.reply, model)
        )
        data = json.dumps(answer).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    def __enter__(self) -> RecordingUpstream:
        import uvicorn

        config = uvicorn.Config(self, host="127.0.0.1", port=self.port, log_level="critical", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake upstream did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)


class HttpTransport:
    """Sends each call to the proxy as an agent would; what the upstream got is what is billed."""

    timing = "round_trip"
    cpu = 0.0

    def __init__(self, client: httpx.Client, base_url: str, upstream: RecordingUpstream) -> None:
        self.client, self.base_url, self.upstream = client, base_url, upstream

    def send(
        self, api: str, body: dict[str, Any], session: str, reply: dict[str, Any]
    ) -> tuple[dict[str, Any], tuple[str, ...], float]:
        self.upstream.reply = reply
        path = "/v1/messages" if api == "anthropic_messages" else "/v1/chat/completions"
        headers = {"x-tokenpilot-session": session, "authorization": "Bearer replay", "x-api-key": "replay"}
        started = time.perf_counter()
        answer = self.client.post(self.base_url + path, content=json.dumps(body), headers=headers)
        elapsed = time.perf_counter() - started
        if answer.status_code != 200:
            raise RuntimeError(f"proxy answered {answer.status_code}: {answer.text[:300]}")
        return self.upstream.received[-1], (), elapsed


class ProxyProcess:
    """`tokenpilot serve --mode MODE` as a subprocess in front of `upstream_url`, own ledger and cache."""

    def __init__(self, mode: str, upstream_url: str, env: dict[str, str]) -> None:
        self.mode = mode
        self.port = free_port()
        self.upstream_url = upstream_url
        self.env = env
        self._dir = tempfile.TemporaryDirectory(prefix=f"proxy-replay-{mode}-")
        self._process: subprocess.Popen[bytes] | None = None
        self._client = httpx.Client(timeout=120)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ledger_path(self) -> Path:
        return Path(self._dir.name) / "ledger.db"

    def transport(self, upstream: RecordingUpstream) -> HttpTransport:
        return HttpTransport(self._client, self.base_url, upstream)

    def __enter__(self) -> ProxyProcess:
        home = Path(self._dir.name)
        env = {
            **os.environ,
            **self.env,
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "XDG_DATA_HOME": str(home / "data"),
        }
        command = [sys.executable, "-m", "tokenpilot", "serve", "--mode", self.mode, "--port", str(self.port)]
        command += ["--openai-base", self.upstream_url, "--anthropic-base", self.upstream_url]
        command += ["--db", str(self.ledger_path)]
        self._process = subprocess.Popen(command, env=env, cwd=home, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                if self._client.get(self.base_url + "/").status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise RuntimeError(f"tokenpilot serve --mode {self.mode} did not start")
            time.sleep(0.1)

    def actions(self) -> list[tuple[str, str]]:
        """(session, optimize actions) of every call, in order, from the proxy's ledger."""
        import tokenpilot as tp

        time.sleep(0.5)  # settlement runs after the response
        ledger = tp.open_ledger(str(self.ledger_path))
        try:
            records = sorted(ledger.records(), key=lambda r: (r.ts, r.id))
        finally:
            ledger.close()
        return [(str(r.session), str(r.optimize_actions or "")) for r in records]

    def __exit__(self, *exc: object) -> None:
        self._client.close()
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(20)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._dir.cleanup()
