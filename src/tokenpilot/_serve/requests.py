"""What the proxy reads from a request: its API, model, stream flag, output limit, scope and session.

Reading is cheap on purpose (one orjson parse); rewriting a body is done only when a mode needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from tokenpilot._serve.settings import ServeSettings

# The output-limit field of each API (OpenAI Chat also accepts the older `max_tokens`).
MAX_FIELDS = {
    "openai_chat": ("max_completion_tokens", "max_tokens"),
    "openai_responses": ("max_output_tokens",),
    "anthropic_messages": ("max_tokens",),
}
# The list a body of each API must carry.
LIST_FIELDS = {"openai_chat": "messages", "openai_responses": "input", "anthropic_messages": "messages"}
# Fixed framing a provider adds that the body's bytes do not show (tool-use system prompts and the like).
HIDDEN_PROMPT_TOKENS = 1024


class BadRequest(Exception):
    """The body is not JSON, or not of the API's shape; the message says which."""


@dataclass(frozen=True, slots=True)
class CallRequest:
    """One parsed request."""

    api: str
    payload: dict[str, Any]
    model: str
    stream: bool
    max_tokens: int | None  # what the client asked for, None when absent

    @property
    def family(self) -> str:
        return "anthropic" if self.api == "anthropic_messages" else "openai"

    @property
    def provider_name(self) -> str:
        return self.family


def parse_request(api: str, body: bytes) -> CallRequest:
    """Check the body's shape and read what accounting needs from it."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadRequest("the request body must be a JSON object")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("the request body needs a 'model' string")
    items = LIST_FIELDS[api]
    value = payload.get(items)
    if api == "openai_responses":
        if not isinstance(value, list | str):
            raise BadRequest("the request body needs an 'input' string or list")
    elif not isinstance(value, list):
        raise BadRequest(f"the request body needs a {items!r} list")
    asked: int | None = None
    for name in MAX_FIELDS[api]:
        limit = payload.get(name)
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise BadRequest(f"{name!r} must be a positive whole number, got {limit!r}")
            asked = limit
            break
    return CallRequest(api, payload, model, payload.get("stream") is True, asked)


def prompt_bound(body: bytes) -> int:
    """An upper bound on the prompt's tokens that costs nothing to compute: every token is at least
    one byte of the body's JSON, plus the provider's hidden framing."""
    return len(body) + HIDDEN_PROMPT_TOKENS


def held_prompt(counted: int, exact: bool, bound: int) -> int:
    """Prompt tokens to hold for a counted prompt: the count with a safety margin (wider for an
    estimate) and the provider's hidden framing, never more than the free upper bound."""
    margin = 1.05 if exact else 1.5
    return min(bound, int(counted * margin) + HIDDEN_PROMPT_TOKENS)


def count_prompt(call: CallRequest) -> tuple[int, bool]:
    """The prompt's tokens by tokenpilot's count, and whether that count is exact."""
    import tokenpilot as tp

    payload = call.payload
    exact = tp.get_model(call.model).exact
    if call.api == "openai_responses":
        text = payload.get("input")
        pieces = [text] if isinstance(text, str) else [orjson.dumps(text).decode()]
        if isinstance(payload.get("instructions"), str):
            pieces.append(payload["instructions"])
        if payload.get("tools"):
            pieces.append(orjson.dumps(payload["tools"]).decode())
        return sum(tp.count_tokens(p, call.model) for p in pieces), False
    try:
        counted = tp.count_messages(payload, model=call.model)
    except tp.TokenpilotError:
        return tp.count_tokens(orjson.dumps(payload.get("messages")).decode(), call.model), False
    return counted, exact


def with_fields(body: bytes, payload: dict[str, Any], changes: dict[str, Any]) -> bytes:
    """The body with top-level fields set. New fields are spliced in after the opening brace, so
    every other byte stays as the client sent it; a changed existing field re-serialises the body."""
    if any(key in payload for key in changes):
        return orjson.dumps({**payload, **changes})
    brace = body.find(b"{")
    insert = b",".join(orjson.dumps(key) + b":" + orjson.dumps(value) for key, value in changes.items())
    rest = body[brace + 1 :]
    separator = b"" if rest.lstrip().startswith(b"}") else b","
    return body[: brace + 1] + insert + separator + rest


def wants_usage_injected(call: CallRequest) -> bool:
    """An OpenAI chat stream that did not ask for usage: the proxy asks upstream on its behalf."""
    if call.api != "openai_chat" or not call.stream:
        return False
    options = call.payload.get("stream_options")
    return not (isinstance(options, dict) and options.get("include_usage") is True)


def usage_injection(call: CallRequest) -> dict[str, Any]:
    options = call.payload.get("stream_options")
    merged = dict(options) if isinstance(options, dict) else {}
    merged["include_usage"] = True
    return {"stream_options": merged}


def header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def session_key(headers: list[tuple[bytes, bytes]], settings: ServeSettings) -> str | None:
    """X-Tokenpilot-Session, else X-Claude-Code-Session-Id, else the configured header, else None."""
    names = [b"x-tokenpilot-session", b"x-claude-code-session-id"]
    if settings.session_header:
        names.append(settings.session_header.encode())
    for name in names:
        value = header(headers, name)
        if value:
            return value
    return None


def client_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The API key the client sent (never stored: only used to look up a scope)."""
    key = header(headers, b"x-api-key")
    if key:
        return key
    auth = header(headers, b"authorization")
    if auth and auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None


def scope_of(headers: list[tuple[bytes, bytes]], settings: ServeSettings) -> str:
    """The scope header, else the scope configured for the client's API key, else the default."""
    named = header(headers, settings.scope_header.encode()) if settings.scope_header else None
    if named:
        return named
    return settings.scope_for_key(client_key(headers)) or settings.default_scope
