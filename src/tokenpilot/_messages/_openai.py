"""OpenAI Chat Completions messages <-> the internal model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from tokenpilot._exceptions import InputError
from tokenpilot._messages._model import (
    Block,
    Image,
    Message,
    Opaque,
    Role,
    Text,
    ToolCall,
    ToolResult,
)

ROLES = ("system", "developer", "user", "assistant", "tool")
_KNOWN_KEYS = {"role", "content", "tool_calls", "tool_call_id"}


def _parts(content: Any, where: str) -> tuple[tuple[Text | Image | Opaque, ...], bool]:
    if content is None:
        return (), True
    if isinstance(content, str):
        return ((Text(content),) if content else ()), True
    if not isinstance(content, Sequence):
        raise InputError(f"{where}: content must be a string or a list of parts")
    parts: list[Text | Image | Opaque] = []
    for part in content:
        if not isinstance(part, Mapping):
            raise InputError(f"{where}: each content part must be an object")
        kind = part.get("type")
        if kind == "text" and set(part) <= {"type", "text"}:
            parts.append(Text(str(part.get("text", ""))))
        elif kind in ("image_url", "input_image"):
            parts.append(Image(part))
        else:  # text parts with extra keys (annotations…) and unknown parts stay verbatim
            parts.append(Opaque(part))
    return tuple(parts), False


def message_from_openai(raw: Mapping[str, Any], index: int = 0) -> Message:
    """One OpenAI message as a `Message` (keeps `raw` for a lossless round trip)."""
    where = f"message {index}"
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: must be an object")
    role = raw.get("role")
    if role not in ROLES:
        raise InputError(f"{where}: unknown role {role!r}")
    parts, is_text = _parts(raw.get("content"), where)
    blocks: list[Block] = []
    if role == "tool":
        call_id = raw.get("tool_call_id")
        if not isinstance(call_id, str):
            raise InputError(f"{where}: a tool message needs a 'tool_call_id'")
        content = tuple(p for p in parts if isinstance(p, Text | Image))
        if len(content) != len(parts):
            raise InputError(f"{where}: tool message content may hold only text and image parts")
        blocks.append(ToolResult(call_id=call_id, content=content, content_is_text=is_text))
    else:
        blocks.extend(parts)
    for n, call in enumerate(raw.get("tool_calls") or ()):
        if not isinstance(call, Mapping) or not isinstance(call.get("function"), Mapping):
            raise InputError(f"{where}: tool_calls[{n}] needs a 'function' object")
        function = call["function"]
        call_id = call.get("id")
        if not isinstance(call_id, str):
            raise InputError(f"{where}: tool_calls[{n}] needs an 'id'")
        blocks.append(
            ToolCall(
                id=call_id,
                name=str(function.get("name", "")),
                arguments=str(function.get("arguments", "")),
                raw=call,
            )
        )
    extra = {k: v for k, v in raw.items() if k not in _KNOWN_KEYS}
    if "content" not in raw:
        extra["__no_content__"] = True
    elif raw["content"] is None:
        extra["__null_content__"] = True
    return Message(role=cast(Role, role), blocks=tuple(blocks), extra=extra, raw=raw, content_is_text=is_text)


def _render_parts(parts: Sequence[Block], as_text: bool) -> Any:
    if as_text and all(isinstance(p, Text) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, Text))
    out: list[Any] = []
    for part in parts:
        if isinstance(part, Text):
            out.append({"type": "text", "text": part.text})
        elif isinstance(part, Image | Opaque):
            out.append(dict(part.raw))
    return out


def message_to_openai(message: Message) -> dict[str, Any]:
    """A `Message` as OpenAI JSON: the original JSON when unchanged, else rendered from blocks."""
    if message.raw is not None:
        return cast(dict[str, Any], message.raw)
    out: dict[str, Any] = {"role": message.role}
    calls = message.tool_calls
    if message.role == "tool":
        result = message.tool_results[0]
        out["content"] = _render_parts(result.content, result.content_is_text)
        out["tool_call_id"] = result.call_id
    else:
        content_parts = [b for b in message.blocks if isinstance(b, Text | Image | Opaque)]
        if message.extra.get("__no_content__") and not content_parts:
            pass
        elif message.extra.get("__null_content__") and not content_parts:
            out["content"] = None
        else:
            out["content"] = _render_parts(content_parts, message.content_is_text)
    if calls:
        out["tool_calls"] = [
            dict(call.raw)
            if call.raw is not None
            else {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in calls
        ]
    for key, value in message.extra.items():
        if not key.startswith("__"):
            out[key] = value
    return out


def from_openai(messages: Sequence[Any]) -> tuple[Message, ...]:
    """OpenAI messages as `Message`s."""
    return tuple(message_from_openai(m, i) for i, m in enumerate(messages))


def to_openai(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """`Message`s as OpenAI messages."""
    return [message_to_openai(m) for m in messages]
