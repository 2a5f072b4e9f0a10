"""Errors the proxy answers itself, each in the error shape of the provider the client speaks."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

# Anthropic's error types, by HTTP status (https://docs.anthropic.com/en/api/errors).
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    502: "api_error",
    504: "api_error",
    529: "overloaded_error",
}


@dataclass(frozen=True, slots=True)
class ProxyError:
    """An answer from the proxy itself: status, a machine code, a message, and extra headers."""

    status: int
    code: str
    message: str
    headers: tuple[tuple[bytes, bytes], ...] = ()

    def body(self, api: str) -> bytes:
        if api == "anthropic_messages":
            kind = _ANTHROPIC_TYPES.get(self.status, "api_error")
            return orjson.dumps({"type": "error", "error": {"type": kind, "message": self.message}})
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        if self.status == 429:
            kind = "rate_limit_error"
        return orjson.dumps(
            {"error": {"message": self.message, "type": kind, "param": None, "code": self.code}}
        )


def bad_request(message: str) -> ProxyError:
    return ProxyError(400, "invalid_request_error", message)


def over_window(api: str, tokens: int, window: int, model: str) -> ProxyError:
    """Worded as each provider words it, so agents that handle "prompt too long" handle this too."""
    if api == "anthropic_messages":
        message = (
            f"prompt is too long: {tokens} tokens > {window} maximum (checked by tokenpilot for {model})"
        )
    else:
        message = (
            f"This model's maximum context length is {window} tokens. However, your messages resulted in "
            f"{tokens} tokens. (checked by tokenpilot for {model})"
        )
    return ProxyError(400, "context_length_exceeded", message, ((b"x-tokenpilot-refused", b"window"),))


def budget_refused(message: str, *, may_clear: bool = False) -> ProxyError:
    """A refusal by a budget; unless other calls' holds are all that stand in the way (`may_clear`),
    `x-should-retry: false` tells the OpenAI and Anthropic SDKs not to retry what waiting won't fix."""
    headers = [(b"x-tokenpilot-refused", b"budget")]
    if not may_clear:
        headers.append((b"x-should-retry", b"false"))
    return ProxyError(429, "budget_exceeded", message, tuple(headers))


def unreachable(upstream: str, reason: str) -> ProxyError:
    return ProxyError(502, "upstream_unreachable", f"tokenpilot could not reach {upstream}: {reason}")


def timed_out(upstream: str) -> ProxyError:
    return ProxyError(504, "upstream_timeout", f"{upstream} did not answer in time")


def stream_error(api: str, message: str) -> bytes:
    """An error event inside an SSE stream, as each provider sends one when a stream fails part-way."""
    if api == "anthropic_messages":
        data = orjson.dumps({"type": "error", "error": {"type": "api_error", "message": message}})
        return b"event: error\ndata: " + data + b"\n\n"
    data = orjson.dumps({"error": {"message": message, "type": "server_error", "param": None, "code": None}})
    if api == "openai_responses":
        return b"event: error\ndata: " + data + b"\n\n"
    return b"data: " + data + b"\n\n"
