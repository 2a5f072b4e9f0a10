"""A fake model provider: a real local HTTP server speaking OpenAI Chat, Responses and Anthropic Messages.

It answers streaming and not, reports usage the way each provider does (cache and reasoning fields
included), injects faults on request and records exactly what it received (method, path, raw headers,
body bytes), so tests can compare what an agent sent with what reached the "provider".

Faults and shapes are chosen per request by headers (they pass through the proxy untouched):

    x-fake-status: 429 | 500 | 529 ...     answer with that status in the provider's error shape
    x-fake-retry-after: 2                  with a Retry-After header
    x-fake-fail-model: claude-opus-4-6     x-fake-status only for requests of that model (failover)
    x-fake-chunks: 64                      text deltas in the reply (default 8)
    x-fake-delay: 0.05                     seconds between streamed events (a slow stream)
    x-fake-disconnect-after: 3             close the connection after that many text deltas
    x-fake-cached: 1000                    prompt tokens reported as read from the cache
    x-fake-cache-write: 500                (Anthropic) prompt tokens reported as written to the cache
    x-fake-reasoning: 7                    reasoning tokens reported (OpenAI)
    x-fake-no-usage: 1                     report no usage at all
    x-fake-output-tokens: 900              output tokens reported, whatever was sent (capped at max_tokens)
    x-fake-set-cookie: a=1; Path=/         (GET /v1/models) answer with that Set-Cookie
    x-fake-tool-calls: [["finish", {...}]]  a script of tool calls (JSON [name, arguments] pairs): the reply
                                           is call number N, N = the tool results already in the request;
                                           past the script's end, the usual text (FakeUpstream(tool_calls=)
                                           and --tool-calls set it for agents that cannot send headers)

Run alone (for benchmarks and smoke scripts): `python tests/fake_upstream.py --port 9100 [--tool-calls JSON]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Received:
    """One request exactly as it arrived."""

    method: str
    path: str
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: str) -> str | None:
        key = name.lower().encode()
        for k, v in self.headers:
            if k.lower() == key:
                return v.decode("latin-1")
        return None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class Reported:
    """The usage the fake reported for one call, in the provider's own fields."""

    api: str
    usage: dict[str, Any] | None
    finish_reason: str | None
    stream: bool
    completed: bool


def prompt_tokens_of(body: bytes) -> int:
    """The fake's "tokenizer": one token per 4 bytes of the request body (deterministic, cheap)."""
    return max(1, len(body) // 4)


class _Disconnect(Exception):
    """Raised inside the app to make the server drop the connection mid-response."""


@dataclass
class FakeUpstream:
    """The ASGI app plus a threaded uvicorn server; use as a context manager in tests."""

    host: str = "127.0.0.1"
    port: int = 0
    record: bool = True
    status: int | None = None  # answer every model call with this error status (an upstream that is down)
    tool_calls: tuple[tuple[str, dict[str, Any]], ...] = ()  # the tool-call script when no header gives one
    received: list[Received] = field(default_factory=list)
    reported: list[Reported] = field(default_factory=list)
    _server: Any = None
    _thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- ASGI -----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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
        body = b"".join(chunks)
        headers = list(scope["headers"])
        request = Received(scope["method"], scope["path"], scope.get("query_string", b""), headers, body)
        if self.record:
            self.received.append(request)
        try:
            await self._answer(request, send)
        except _Disconnect:
            raise RuntimeError("fake upstream: disconnect injected") from None

    async def _answer(self, request: Received, send: Send) -> None:
        path = request.path
        if request.method == "HEAD" or (request.method == "GET" and path == "/"):
            await _send(send, 200, b"", "text/plain")
            return
        if request.method == "GET" and path == "/v1/models":
            models = {"object": "list", "data": [{"id": "gpt-4o", "object": "model", "owned_by": "fake"}]}
            cookie = request.header("x-fake-set-cookie")  # as a CDN in front of a provider sets one
            extra = [(b"set-cookie", cookie.encode())] if cookie else []
            await _send(send, 200, json.dumps(models).encode(), extra=extra)
            return
        if path == "/v1/messages/count_tokens":
            await _send(send, 200, json.dumps({"input_tokens": prompt_tokens_of(request.body)}).encode())
            return
        api = {
            "/v1/chat/completions": "openai_chat",
            "/v1/responses": "openai_responses",
            "/v1/messages": "anthropic_messages",
        }.get(path)
        if api is None:
            await _send(send, 404, json.dumps({"error": {"message": f"no route {path}"}}).encode())
            return
        if self.status is not None:
            await self._error(api, self.status, request, send)
            return
        try:
            payload = json.loads(request.body)
        except ValueError:
            payload = None
        status = request.header("x-fake-status")
        only = request.header("x-fake-fail-model")
        chosen = only is None or (isinstance(payload, dict) and payload.get("model") == only)
        if status is not None and status != "200" and chosen:
            await self._error(api, int(status), request, send)
            return
        if not isinstance(payload, dict):
            await self._error(api, 400, request, send)
            return
        shape = _Shape.of(request, payload, api, self.tool_calls)
        if payload.get("stream"):
            await self._stream(api, shape, payload, send)
        else:
            await self._complete(api, shape, payload, send)

    async def _error(self, api: str, status: int, request: Received, send: Send) -> None:
        extra = []
        retry_after = request.header("x-fake-retry-after")
        if retry_after:
            extra.append((b"retry-after", retry_after.encode()))
        if api == "anthropic_messages":
            kind = {429: "rate_limit_error", 529: "overloaded_error", 400: "invalid_request_error"}.get(
                status, "api_error"
            )
            body = {"type": "error", "error": {"type": kind, "message": f"fake {status}"}}
        else:
            kind = {429: "rate_limit_exceeded", 400: "invalid_request_error"}.get(status, "server_error")
            body = {"error": {"message": f"fake {status}", "type": kind, "param": None, "code": kind}}
        self._report(Reported(api, None, None, False, False))
        await _send(send, status, json.dumps(body).encode(), extra=extra)

    # --- non-streaming ------------------------------------------------------------------------

    async def _complete(self, api: str, shape: _Shape, payload: dict[str, Any], send: Send) -> None:
        text = "".join(shape.deltas)
        usage = shape.usage(api)
        finish = shape.finish(api)
        model = payload.get("model", "unknown")
        call = shape.tool_call
        if api == "openai_chat":
            message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
            if call is not None:
                message = {**message, "content": None, "tool_calls": [_chat_tool_call(call)]}
            body: dict[str, Any] = {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
                "system_fingerprint": "fp_fake",
            }
        elif api == "openai_responses":
            body = _response_object(model, text, "completed" if finish == "stop" else "incomplete")
            if finish != "stop":
                body["incomplete_details"] = {"reason": "max_output_tokens"}
            if call is not None:
                body["output"] = [_responses_tool_call(call, "completed")]
        else:
            content = [{"type": "text", "text": text}] if call is None else [_messages_tool_use(call)]
            body = {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": finish,
                "stop_sequence": None,
            }
        if usage is not None:
            body["usage"] = usage
        self._report(Reported(api, usage, finish, False, True))
        await _send(send, 200, json.dumps(body).encode(), extra=[(b"x-request-id", b"req_fake")])

    # --- streaming ----------------------------------------------------------------------------

    async def _stream(self, api: str, shape: _Shape, payload: dict[str, Any], send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
            }
        )
        model = payload.get("model", "unknown")
        usage = shape.usage(api)
        finish = shape.finish(api)
        events = _EVENTS[api](shape, model, usage, finish, payload)
        sent_deltas = 0
        for kind, event in events:
            if kind == "delta":
                if shape.disconnect_after is not None and sent_deltas >= shape.disconnect_after:
                    self._report(Reported(api, usage, None, True, False))
                    raise _Disconnect
                sent_deltas += 1
                if shape.delay:
                    await asyncio.sleep(shape.delay)
            await send({"type": "http.response.body", "body": event, "more_body": True})
        self._report(Reported(api, usage, finish, True, True))
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _report(self, reported: Reported) -> None:
        if self.record:
            self.reported.append(reported)

    # --- running ------------------------------------------------------------------------------

    def start(self) -> FakeUpstream:
        import socket

        import uvicorn

        if self.port == 0:
            with socket.socket() as probe:
                probe.bind((self.host, 0))
                self.port = probe.getsockname()[1]
        config = uvicorn.Config(
            self, host=self.host, port=self.port, log_level="critical", lifespan="on", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake upstream did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def clear(self) -> None:
        self.received.clear()
        self.reported.clear()

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True, slots=True)
class _Shape:
    """What this one reply looks like, from the request and its x-fake-* headers."""

    prompt_tokens: int
    deltas: tuple[str, ...]
    truncated: bool
    cached: int
    cache_write: int
    reasoning: int
    no_usage: bool
    output_tokens: int | None
    delay: float
    disconnect_after: int | None
    tool_call: _ToolCall | None = None

    @staticmethod
    def of(
        request: Received,
        payload: dict[str, Any],
        api: str,
        tool_calls: tuple[tuple[str, dict[str, Any]], ...] = (),
    ) -> _Shape:
        def number(name: str, default: float) -> float:
            raw = request.header(name)
            return default if raw is None else float(raw)

        chunks = int(number("x-fake-chunks", 8))
        limit = payload.get("max_tokens") or payload.get("max_completion_tokens")
        limit = limit or payload.get("max_output_tokens")
        truncated = isinstance(limit, int) and limit < chunks
        if truncated:
            chunks = int(limit)
        disconnect = request.header("x-fake-disconnect-after")
        prompt = prompt_tokens_of(request.body)
        output = request.header("x-fake-output-tokens")
        output_tokens = None if output is None else int(output)
        if output_tokens is not None and isinstance(limit, int):
            output_tokens = min(output_tokens, limit)
        return _Shape(
            prompt_tokens=prompt,
            deltas=tuple(f"tok{i} " for i in range(chunks)),
            truncated=truncated,
            cached=min(prompt, int(number("x-fake-cached", 0))),
            cache_write=int(number("x-fake-cache-write", 0)),
            reasoning=int(number("x-fake-reasoning", 0)),
            no_usage=request.header("x-fake-no-usage") is not None,
            output_tokens=output_tokens,
            delay=number("x-fake-delay", 0.0),
            disconnect_after=None if disconnect is None else int(disconnect),
            tool_call=_next_tool_call(request, payload, api, tool_calls),
        )

    def usage(self, api: str) -> dict[str, Any] | None:
        if self.no_usage:
            return None
        output = self.output_tokens if self.output_tokens is not None else len(self.deltas) + self.reasoning
        if api == "openai_chat":
            return {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": output,
                "total_tokens": self.prompt_tokens + output,
                "prompt_tokens_details": {"cached_tokens": self.cached, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": self.reasoning, "audio_tokens": 0},
            }
        if api == "openai_responses":
            return {
                "input_tokens": self.prompt_tokens,
                "input_tokens_details": {"cached_tokens": self.cached},
                "output_tokens": output,
                "output_tokens_details": {"reasoning_tokens": self.reasoning},
                "total_tokens": self.prompt_tokens + output,
            }
        # Anthropic: input_tokens excludes what was read from or written to the cache.
        uncached = max(0, self.prompt_tokens - self.cached - self.cache_write)
        return {
            "input_tokens": uncached,
            "cache_creation_input_tokens": self.cache_write,
            "cache_read_input_tokens": self.cached,
            "output_tokens": output,
            "service_tier": "standard",
        }

    def finish(self, api: str) -> str:
        if self.tool_call is not None and not self.truncated:
            return {"openai_chat": "tool_calls", "openai_responses": "stop"}.get(api, "tool_use")
        if api == "openai_chat":
            return "length" if self.truncated else "stop"
        if api == "openai_responses":
            return "max_output_tokens" if self.truncated else "stop"
        return "max_tokens" if self.truncated else "end_turn"


@dataclass(frozen=True, slots=True)
class _ToolCall:
    """One scripted tool call: its place in the script gives it a stable id."""

    number: int
    name: str
    arguments: dict[str, Any]

    @property
    def call_id(self) -> str:
        return f"call_fake_{self.number}"

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments)


def _next_tool_call(
    request: Received, payload: dict[str, Any], api: str, default: tuple[tuple[str, dict[str, Any]], ...]
) -> _ToolCall | None:
    raw = request.header("x-fake-tool-calls")
    script = default if raw is None else tuple((str(n), dict(a)) for n, a in json.loads(raw))
    if not script:
        return None
    done = _tool_results_in(payload, api)
    if done >= len(script):
        return None
    name, arguments = script[done]
    return _ToolCall(done, name, arguments)


def _tool_results_in(payload: dict[str, Any], api: str) -> int:
    """How many tool results the conversation already holds: where the script has got to."""
    if api == "openai_chat":
        messages = payload.get("messages") or []
        return sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "tool")
    if api == "openai_responses":
        items = payload.get("input")
        items = items if isinstance(items, list) else []
        return sum(1 for i in items if isinstance(i, dict) and i.get("type") == "function_call_output")
    blocks = [
        block
        for m in payload.get("messages") or []
        if isinstance(m, dict) and isinstance(m.get("content"), list)
        for block in m["content"]
    ]
    return sum(1 for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result")


def _chat_tool_call(call: _ToolCall) -> dict[str, Any]:
    function = {"name": call.name, "arguments": call.arguments_json}
    return {"id": call.call_id, "type": "function", "function": function}


def _responses_tool_call(call: _ToolCall, status: str, arguments: str | None = None) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc_fake_{call.number}",
        "call_id": call.call_id,
        "name": call.name,
        "arguments": call.arguments_json if arguments is None else arguments,
        "status": status,
    }


def _messages_tool_use(call: _ToolCall, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    given = call.arguments if arguments is None else arguments
    return {"type": "tool_use", "id": f"toolu_fake_{call.number}", "name": call.name, "input": given}


def _sse(data: Any, event: str | None = None) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


def _chat_events(
    shape: _Shape, model: str, usage: dict[str, Any] | None, finish: str, payload: dict[str, Any]
) -> list[tuple[str, bytes]]:
    include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model}
    extra: dict[str, Any] = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return _sse({**base, "choices": [choice], **extra})

    call = shape.tool_call
    if call is not None:
        start = {**_chat_tool_call(call), "index": 0}
        start["function"] = {"name": call.name, "arguments": ""}
        arguments = {"index": 0, "function": {"arguments": call.arguments_json}}
        events = [("head", chunk({"role": "assistant", "content": None, "tool_calls": [start]}))]
        events.append(("delta", chunk({"tool_calls": [arguments]})))
        events.append(("tail", chunk({}, finish)))
        if include_usage and usage is not None:
            events.append(("usage", _sse({**base, "choices": [], "usage": usage})))
        events.append(("done", _sse("[DONE]")))
        return events
    events = [("head", chunk({"role": "assistant", "content": ""}))]
    events += [("delta", chunk({"content": text})) for text in shape.deltas]
    events.append(("tail", chunk({}, finish)))
    if include_usage and usage is not None:
        events.append(("usage", _sse({**base, "choices": [], "usage": usage})))
    events.append(("done", _sse("[DONE]")))
    return events


def _response_object(model: str, text: str, status: str) -> dict[str, Any]:
    return {
        "id": "resp_fake",
        "object": "response",
        "created_at": 1,
        "status": status,
        "model": model,
        "output": [
            {
                "type": "message",
                "id": "msg_fake",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }


def _responses_events(
    shape: _Shape, model: str, usage: dict[str, Any] | None, finish: str, payload: dict[str, Any]
) -> list[tuple[str, bytes]]:
    start = _response_object(model, "", "in_progress")
    start["output"] = []
    events = [
        (
            "head",
            _sse({"type": "response.created", "sequence_number": 0, "response": start}, "response.created"),
        ),
    ]
    if shape.tool_call is not None:
        return events + _responses_tool_events(shape.tool_call, model, usage, finish)
    item = {"type": "message", "id": "msg_fake", "status": "in_progress", "role": "assistant", "content": []}
    events.append(
        (
            "head",
            _sse(
                {"type": "response.output_item.added", "output_index": 0, "item": item, "sequence_number": 1},
                "response.output_item.added",
            ),
        )
    )
    part = {"type": "output_text", "text": "", "annotations": []}
    added = {
        "type": "response.content_part.added",
        "item_id": "msg_fake",
        "output_index": 0,
        "content_index": 0,
    }
    events.append(
        ("head", _sse({**added, "part": part, "sequence_number": 1}, "response.content_part.added"))
    )
    for i, text in enumerate(shape.deltas):
        delta = {
            "type": "response.output_text.delta",
            "item_id": "msg_fake",
            "output_index": 0,
            "content_index": 0,
            "delta": text,
            "sequence_number": 2 + i,
        }
        events.append(("delta", _sse(delta, "response.output_text.delta")))
    text = "".join(shape.deltas)
    # The item's end, as OpenAI sends it: Codex CLI shows a reply from output_item.done only.
    finished = {
        **item,
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    number = 2 + len(shape.deltas)
    events.append(
        (
            "tail",
            _sse(
                {
                    "type": "response.output_item.done",
                    "output_index": 0,
                    "item": finished,
                    "sequence_number": number,
                },
                "response.output_item.done",
            ),
        )
    )
    done = _response_object(model, text, "completed" if finish == "stop" else "incomplete")
    if usage is not None:
        done["usage"] = usage
    kind = "response.completed" if finish == "stop" else "response.incomplete"
    if finish != "stop":
        done["incomplete_details"] = {"reason": "max_output_tokens"}
    events.append(("tail", _sse({"type": kind, "response": done, "sequence_number": number + 1}, kind)))
    return events


def _responses_tool_events(
    call: _ToolCall, model: str, usage: dict[str, Any] | None, finish: str
) -> list[tuple[str, bytes]]:
    item_id = f"fc_fake_{call.number}"
    added = {
        "type": "response.output_item.added",
        "output_index": 0,
        "item": _responses_tool_call(call, "in_progress", ""),
        "sequence_number": 1,
    }
    delta = {
        "type": "response.function_call_arguments.delta",
        "item_id": item_id,
        "output_index": 0,
        "delta": call.arguments_json,
        "sequence_number": 2,
    }
    arguments_done = {
        "type": "response.function_call_arguments.done",
        "item_id": item_id,
        "output_index": 0,
        "arguments": call.arguments_json,
        "sequence_number": 3,
    }
    item_done = {
        "type": "response.output_item.done",
        "output_index": 0,
        "item": _responses_tool_call(call, "completed"),
        "sequence_number": 4,
    }
    done = _response_object(model, "", "completed" if finish == "stop" else "incomplete")
    done["output"] = [_responses_tool_call(call, "completed")]
    if usage is not None:
        done["usage"] = usage
    kind = "response.completed" if finish == "stop" else "response.incomplete"
    return [
        ("head", _sse(added, "response.output_item.added")),
        ("delta", _sse(delta, "response.function_call_arguments.delta")),
        ("tail", _sse(arguments_done, "response.function_call_arguments.done")),
        ("tail", _sse(item_done, "response.output_item.done")),
        ("tail", _sse({"type": kind, "response": done, "sequence_number": 5}, kind)),
    ]


def _messages_events(
    shape: _Shape, model: str, usage: dict[str, Any] | None, finish: str, payload: dict[str, Any]
) -> list[tuple[str, bytes]]:
    start_usage = dict(usage or {})
    if usage is not None:
        start_usage["output_tokens"] = 1
    message = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }
    if usage is not None:
        message["usage"] = start_usage
    call = shape.tool_call
    block = {"type": "text", "text": ""} if call is None else _messages_tool_use(call, {})
    events = [
        ("head", _sse({"type": "message_start", "message": message}, "message_start")),
        (
            "head",
            _sse({"type": "content_block_start", "index": 0, "content_block": block}, "content_block_start"),
        ),
        ("head", _sse({"type": "ping"}, "ping")),
    ]
    if call is not None:
        json_delta = {"type": "input_json_delta", "partial_json": call.arguments_json}
        delta = {"type": "content_block_delta", "index": 0, "delta": json_delta}
        events.append(("delta", _sse(delta, "content_block_delta")))
    for text in shape.deltas if call is None else ():
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
        events.append(("delta", _sse(delta, "content_block_delta")))
    events.append(("tail", _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")))
    final: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": finish, "stop_sequence": None}}
    if usage is not None:
        final["usage"] = {"output_tokens": usage["output_tokens"]}
    events.append(("tail", _sse(final, "message_delta")))
    events.append(("tail", _sse({"type": "message_stop"}, "message_stop")))
    return events


_EVENTS = {
    "openai_chat": _chat_events,
    "openai_responses": _responses_events,
    "anthropic_messages": _messages_events,
}


async def _send(
    send: Send,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--tool-calls", default="[]", help='a tool-call script: [["name", {...}], ...]')
    args = parser.parse_args()
    import uvicorn

    script = tuple((str(name), dict(arguments)) for name, arguments in json.loads(args.tool_calls))
    # Standalone (benchmarks): keep no history, so memory stays flat however long it runs.
    app = FakeUpstream(args.host, args.port, record=False, tool_calls=script)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
