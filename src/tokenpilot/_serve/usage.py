"""One usage normaliser for the three wire shapes, whole bodies and SSE streams alike.

The ledger's convention: `input_tokens` counts every prompt token, cached ones included.
OpenAI Chat's `prompt_tokens` and Responses' `input_tokens` already do (their `cached_tokens` are a
part of it); Anthropic's `input_tokens` excludes `cache_read_input_tokens` and
`cache_creation_input_tokens`, so they are added back.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import orjson

# Cheap tests on a chat chunk's bytes, so only the few chunks that matter are parsed as JSON.
_CHAT_USAGE = re.compile(rb'"usage"\s*:\s*\{')
_CHAT_FINISH = re.compile(rb'"finish_reason"\s*:\s*"')
_RESPONSE_ENDS = (b'"response.completed"', b'"response.incomplete"', b'"response.failed"')
_CHAT_TOKEN = re.compile(rb'"content"\s*:\s*"[^"]|"tool_calls"')
_MESSAGE_EVENTS = (b'"message_start"', b'"message_delta"', b'"message_stop"')


def _spans(events: bytes, markers: tuple[bytes, ...]) -> list[tuple[int, int]]:
    """Start and end of each whole event in `events` holding one of `markers`, in stream order."""
    found: set[tuple[int, int]] = set()
    for marker in markers:
        at = events.find(marker)
        while at >= 0:
            start = events.rfind(b"\n\n", 0, at) + 2 if at else 0
            start = 0 if start == 1 else start
            stop = events.find(b"\n\n", at) + 2
            found.add((start, stop))
            at = events.find(marker, stop)
    return sorted(found)


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """What the provider reported, in the ledger's convention."""

    input_tokens: int
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _detail(usage: dict[str, Any], table: str, key: str) -> int:
    details = usage.get(table)
    return _int(details.get(key)) if isinstance(details, dict) else 0


def from_openai_chat(usage: Any) -> TokenUsage | None:
    """`usage` of a Chat Completions body or final stream chunk."""
    if not isinstance(usage, dict) or "prompt_tokens" not in usage:
        return None
    prompt = _int(usage.get("prompt_tokens"))
    return TokenUsage(
        input_tokens=prompt,
        output_tokens=_int(usage.get("completion_tokens")),
        cache_read_tokens=min(prompt, _detail(usage, "prompt_tokens_details", "cached_tokens")),
        reasoning_tokens=_detail(usage, "completion_tokens_details", "reasoning_tokens"),
    )


def from_openai_responses(usage: Any) -> TokenUsage | None:
    """`usage` of a Responses object (body or `response.completed` event)."""
    if not isinstance(usage, dict) or "input_tokens" not in usage:
        return None
    prompt = _int(usage.get("input_tokens"))
    return TokenUsage(
        input_tokens=prompt,
        output_tokens=_int(usage.get("output_tokens")),
        cache_read_tokens=min(prompt, _detail(usage, "input_tokens_details", "cached_tokens")),
        reasoning_tokens=_detail(usage, "output_tokens_details", "reasoning_tokens"),
    )


def from_anthropic(usage: Any) -> TokenUsage | None:
    """`usage` of a Messages body (or `message_start` merged with `message_delta` in a stream)."""
    if not isinstance(usage, dict) or "input_tokens" not in usage:
        return None
    read = _int(usage.get("cache_read_input_tokens"))
    write = _int(usage.get("cache_creation_input_tokens"))
    return TokenUsage(
        input_tokens=_int(usage.get("input_tokens")) + read + write,
        output_tokens=_int(usage.get("output_tokens")),
        cache_read_tokens=read,
        cache_write_tokens=write,
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    """Usage and finish reason read from a whole (non-streamed) response body."""

    usage: TokenUsage | None
    finish_reason: str | None
    response_model: str | None = None


def read_body(api: str, body: bytes) -> Outcome:
    """Usage and finish reason of a JSON response body; nothing when it is not one."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return Outcome(None, None)
    if not isinstance(data, dict):
        return Outcome(None, None)
    model = data.get("model") if isinstance(data.get("model"), str) else None
    if api == "openai_chat":
        choices = data.get("choices") or [{}]
        finish = choices[0].get("finish_reason") if isinstance(choices[0], dict) else None
        return Outcome(from_openai_chat(data.get("usage")), finish, model)
    if api == "openai_responses":
        return Outcome(from_openai_responses(data.get("usage")), _responses_finish(data), model)
    return Outcome(from_anthropic(data.get("usage")), data.get("stop_reason"), model)


def _responses_finish(response: dict[str, Any]) -> str | None:
    status = response.get("status")
    if status == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return reason if isinstance(reason, str) else "incomplete"
    if status == "completed":
        return "stop"
    return status if isinstance(status, str) else None


class StreamTracker:
    """Reads an SSE stream as it passes (a copy of each chunk) and keeps usage, finish reason, TTFT.

    `feed(chunk)` returns the bytes to forward: the chunk itself, except that with `strip_usage`
    (an OpenAI chat stream whose client did not ask for usage, where the proxy did) the usage-only
    chunk is cut out so the client sees exactly the stream it asked for.
    """

    __slots__ = (
        "_anthropic_usage",
        "_buffer",
        "api",
        "completed",
        "deltas",
        "finish_reason",
        "first_token_at",
        "response_model",
        "strip_usage",
        "usage",
    )

    def __init__(self, api: str, *, strip_usage: bool = False) -> None:
        self.api = api
        self.strip_usage = strip_usage
        self._buffer = b""
        self.usage: TokenUsage | None = None
        self.finish_reason: str | None = None
        self.first_token_at: float | None = None
        self.completed = False
        self.response_model: str | None = None
        self._anthropic_usage: dict[str, Any] = {}
        self.deltas = 0

    def feed(self, chunk: bytes) -> bytes:
        if self.strip_usage or b"\r" in chunk:
            return self._feed_events(chunk)
        # The common case: count deltas over whole events with C-level byte counts, and split into
        # events only the few chunks that carry usage, a finish reason or the end (a chunk holds
        # many events when the proxy reads slower than the upstream writes).
        data = self._buffer + chunk if self._buffer else chunk
        end = data.rfind(b"\n\n")
        if end < 0:
            self._buffer = data
            return chunk
        whole = data if end + 2 == len(data) else data[: end + 2]
        self._buffer = data[end + 2 :]
        if data.find(b"\n\n") == end:  # one event (an upstream streaming at its own pace): read it
            self._event(whole)
            return chunk
        markers = self._scan(whole)
        if markers is None:  # not compact JSON: read every event
            for event in whole.split(b"\n\n"):
                if event.strip():
                    self._event(event + b"\n\n", count=False)
            return chunk
        for start, stop in _spans(whole, markers):
            self._event(whole[start:stop], count=False)
        return chunk

    def _scan(self, whole: bytes) -> tuple[bytes, ...] | None:
        """Count the deltas in whole events; the markers of the events to read as JSON (None: all)."""
        api = self.api
        markers: tuple[bytes, ...]
        if api == "openai_chat":
            if b'"content": ' in whole:  # JSON with spaces: the exact pattern, slower
                tokens = len(_CHAT_TOKEN.findall(whole))
            else:
                tokens = (
                    whole.count(b'"content":"') - whole.count(b'"content":""') + whole.count(b'"tool_calls"')
                )
            usage, finish = whole.count(b'"usage":{'), whole.count(b'"finish_reason":"')
            if (
                whole.count(b'"usage"') != whole.count(b'"usage":null') + usage
                or whole.count(b'"finish_reason"') != whole.count(b'"finish_reason":null') + finish
            ):
                markers_or_all: tuple[bytes, ...] | None = None
            else:
                markers_or_all = (
                    (b'"usage":{',) * (usage > 0) + (b'"finish_reason":"',) * (finish > 0) + (b"[DONE]",)
                )
        elif api == "openai_responses":
            tokens = whole.count(b'.delta"')
            markers_or_all = _RESPONSE_ENDS
        else:
            tokens = whole.count(b'"content_block_delta"')
            markers_or_all = _MESSAGE_EVENTS
        if tokens > 0:
            self.deltas += tokens
            if self.first_token_at is None:
                self.first_token_at = time.monotonic()
        if markers_or_all is None:
            return None
        markers = markers_or_all
        return markers

    def _feed_events(self, chunk: bytes) -> bytes:
        """Event by event: for a stream whose usage chunk is cut out, or one with CRLF line ends."""
        buffer = self._buffer + chunk if self._buffer else chunk
        start = 0
        kept: list[bytes] | None = [] if self.strip_usage else None
        while True:
            end = buffer.find(b"\n\n", start)
            width = 2
            if end < 0:
                end = buffer.find(b"\r\n\r\n", start)
                width = 4
                if end < 0:
                    break
            event = buffer[start : end + width]
            drop = self._event(event)
            if kept is not None and not drop:
                kept.append(event)
            start = end + width
        self._buffer = buffer[start:]
        if kept is None:
            return chunk
        # Forward whole events only, so a dropped event never leaves half of itself behind.
        return b"".join(kept)

    def flush(self) -> bytes:
        """What is left in the buffer at the end of the stream (an unterminated last event)."""
        rest, self._buffer = self._buffer, b""
        if rest.strip():
            self._event(rest + b"\n\n")
        return rest if self.strip_usage else b""

    def _event(self, event: bytes, *, count: bool = True) -> bool:
        """Read one event (counting its delta unless `feed` did); True when it must not reach the client."""
        data_at = event.find(b"data:")
        if data_at < 0:
            return False
        data = event[data_at + 5 :].strip()
        if self.api == "openai_chat":
            return self._chat(data, count)
        if self.api == "openai_responses":
            self._responses(data, count)
        else:
            self._anthropic(data, count)
        return False

    def _token(self, count: bool) -> None:
        if not count:
            return
        self.deltas += 1
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()

    def _chat(self, data: bytes, count: bool) -> bool:
        if data == b"[DONE]":
            self.completed = True
            return False
        wanted = _CHAT_USAGE.search(data) is not None or _CHAT_FINISH.search(data) is not None
        if _CHAT_TOKEN.search(data) is not None:
            self._token(count)
        if not wanted:
            return False
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(chunk, dict):
            return False
        if isinstance(chunk.get("model"), str):
            self.response_model = chunk["model"]
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict) and choice.get("finish_reason"):
                    self.finish_reason = choice["finish_reason"]
        usage = from_openai_chat(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
            return self.strip_usage and not choices
        return False

    def _responses(self, data: bytes, count: bool) -> None:
        if b'.delta"' in data:
            self._token(count)
        if not any(kind in data for kind in _RESPONSE_ENDS):
            return
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        response = event.get("response") if isinstance(event, dict) else None
        if not isinstance(response, dict):
            return
        self.completed = True
        self.finish_reason = _responses_finish(response)
        if isinstance(response.get("model"), str):
            self.response_model = response["model"]
        usage = from_openai_responses(response.get("usage"))
        if usage is not None:
            self.usage = usage

    def _anthropic(self, data: bytes, count: bool) -> None:
        if b'"content_block_delta"' in data:
            self._token(count)
            return
        if b'"message_start"' not in data and b'"message_delta"' not in data:
            if b'"message_stop"' in data:
                self.completed = True
            return
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(event, dict):
            return
        if event.get("type") == "message_start":
            message = event.get("message") or {}
            if isinstance(message.get("model"), str):
                self.response_model = message["model"]
            usage = message.get("usage")
            if isinstance(usage, dict):
                self._anthropic_usage.update(usage)
        elif event.get("type") == "message_delta":
            delta = event.get("delta") or {}
            if isinstance(delta, dict) and delta.get("stop_reason"):
                self.finish_reason = delta["stop_reason"]
            usage = event.get("usage")
            if isinstance(usage, dict):
                # message_delta's counts are cumulative: they replace message_start's.
                self._anthropic_usage.update({k: v for k, v in usage.items() if v is not None})
        self.usage = from_anthropic(self._anthropic_usage)
