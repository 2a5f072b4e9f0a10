"""Reading a messages array or request body in either format, and writing it back in its shape."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tokenpilot._exceptions import InputError
from tokenpilot._messages._anthropic import from_anthropic, to_anthropic
from tokenpilot._messages._model import Conversation, Provider
from tokenpilot._messages._openai import from_openai, to_openai

_ANTHROPIC_BLOCKS = {"tool_use", "tool_result", "thinking", "redacted_thinking"}


def _messages_of(data: Any) -> tuple[Sequence[Any], Mapping[str, Any] | None]:
    if isinstance(data, Mapping):
        messages = data.get("messages")
        if not isinstance(messages, Sequence) or isinstance(messages, str | bytes):
            raise InputError("a request body needs a 'messages' list")
        return messages, data
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        return data, None
    raise InputError("expected a messages array or a request body object")


def detect_format(data: Any) -> Provider:
    """'openai' or 'anthropic', from the messages' shape; plain user/assistant text is 'openai'.

    >>> detect_format({"system": "be brief", "messages": [{"role": "user", "content": "hi"}]})
    'anthropic'
    """
    messages, body = _messages_of(data)
    if body is not None and "system" in body:
        return "anthropic"
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        if message.get("role") in ("system", "developer", "tool") or "tool_calls" in message:
            return "openai"
        content = message.get("content")
        if isinstance(content, list):
            for block in content:
                if not isinstance(block, Mapping):
                    continue
                kind = block.get("type")
                if kind in _ANTHROPIC_BLOCKS or (kind == "image" and "source" in block):
                    return "anthropic"
                if kind in ("image_url", "input_audio"):
                    return "openai"
    return "openai"


def parse(data: Any, format: str = "auto") -> Conversation:
    """A messages array or a request body (either provider) as a `Conversation`.

    >>> parse([{"role": "user", "content": "hi"}]).messages[0].text
    'hi'
    """
    messages, body = _messages_of(data)
    if format == "auto":
        provider: Provider = detect_format(data)
    elif format in ("openai", "anthropic"):
        provider = "openai" if format == "openai" else "anthropic"
    else:
        raise InputError(f"unknown format {format!r} (auto, openai, anthropic)")
    parsed = from_openai(messages) if provider == "openai" else from_anthropic(messages)
    return Conversation(
        provider=provider,
        messages=parsed,
        body=dict(body) if body is not None else {},
        shape="body" if body is not None else "list",
    )


def render(conversation: Conversation) -> Any:
    """The conversation in its provider's JSON and the shape it was read in (array or body)."""
    if conversation.provider == "openai":
        messages: list[dict[str, Any]] = to_openai(conversation.messages)
    else:
        messages = to_anthropic(conversation.messages)
    if conversation.shape == "list":
        return messages
    return {**conversation.body, "messages": messages}
