"""Anthropic Messages <-> the internal model. The top-level `system` stays in the request body."""

from __future__ import annotations

import json
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
    Thinking,
    ToolCall,
    ToolResult,
)

_KNOWN_KEYS = {"role", "content"}


def _result_content(content: Any, where: str) -> tuple[tuple[Text | Image, ...], bool]:
    if content is None:
        return (), False
    if isinstance(content, str):
        return ((Text(content),) if content else ()), True
    if not isinstance(content, Sequence):
        raise InputError(f"{where}: tool_result content must be a string or a list of blocks")
    parts: list[Text | Image] = []
    for block in content:
        if not isinstance(block, Mapping):
            raise InputError(f"{where}: tool_result content blocks must be objects")
        if block.get("type") == "text" and set(block) <= {"type", "text"}:
            parts.append(Text(str(block.get("text", ""))))
        else:  # images and anything richer are kept verbatim
            parts.append(Image(block))
    return tuple(parts), False


def _block(block: Any, where: str) -> Block:
    if not isinstance(block, Mapping):
        raise InputError(f"{where}: each content block must be an object")
    kind = block.get("type")
    if kind == "text" and set(block) <= {"type", "text"}:
        return Text(str(block.get("text", "")))
    if kind == "image":
        return Image(block)
    if kind == "tool_use":
        call_id = block.get("id")
        if not isinstance(call_id, str):
            raise InputError(f"{where}: a tool_use block needs an 'id'")
        arguments = json.dumps(block.get("input", {}), ensure_ascii=False, separators=(",", ":"))
        return ToolCall(id=call_id, name=str(block.get("name", "")), arguments=arguments, raw=block)
    if kind == "tool_result":
        call_id = block.get("tool_use_id")
        if not isinstance(call_id, str):
            raise InputError(f"{where}: a tool_result block needs a 'tool_use_id'")
        content, is_text = _result_content(block.get("content"), where)
        return ToolResult(
            call_id=call_id,
            content=content,
            is_error=bool(block.get("is_error", False)),
            raw=block,
            content_is_text=is_text,
        )
    if kind in ("thinking", "redacted_thinking"):
        return Thinking(block)
    return Opaque(block)


def message_from_anthropic(raw: Mapping[str, Any], index: int = 0) -> Message:
    """One Anthropic message as a `Message` (keeps `raw` for a lossless round trip)."""
    where = f"message {index}"
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: must be an object")
    role = raw.get("role")
    if role not in ("user", "assistant"):
        raise InputError(f"{where}: Anthropic messages are 'user' or 'assistant', got {role!r}")
    content = raw.get("content")
    if isinstance(content, str):
        blocks: tuple[Block, ...] = (Text(content),)
        is_text = True
    elif isinstance(content, Sequence):
        blocks = tuple(_block(b, where) for b in content)
        is_text = False
    else:
        raise InputError(f"{where}: content must be a string or a list of blocks")
    extra = {k: v for k, v in raw.items() if k not in _KNOWN_KEYS}
    return Message(role=cast(Role, role), blocks=blocks, extra=extra, raw=raw, content_is_text=is_text)


def _render_result(result: ToolResult) -> dict[str, Any]:
    base: dict[str, Any] = dict(result.raw) if result.raw is not None else {}
    base["type"] = "tool_result"
    base["tool_use_id"] = result.call_id
    if result.content_is_text and all(isinstance(p, Text) for p in result.content):
        base["content"] = "".join(p.text for p in result.content if isinstance(p, Text))
    else:
        base["content"] = [
            {"type": "text", "text": p.text} if isinstance(p, Text) else dict(p.raw) for p in result.content
        ]
    if result.is_error:
        base["is_error"] = True
    else:
        base.pop("is_error", None)
    return base


def _render_block(block: Block) -> dict[str, Any]:
    if isinstance(block, Text):
        return {"type": "text", "text": block.text}
    if isinstance(block, ToolCall):
        if block.raw is not None:
            return dict(block.raw)
        try:
            arguments = json.loads(block.arguments) if block.arguments else {}
        except ValueError:
            arguments = {"arguments": block.arguments}
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": arguments}
    if isinstance(block, ToolResult):
        if block.raw is not None and _result_content(block.raw.get("content"), "")[0] == block.content:
            return dict(block.raw)
        return _render_result(block)
    return dict(block.raw)


def message_to_anthropic(message: Message) -> dict[str, Any]:
    """A `Message` as Anthropic JSON: the original JSON when unchanged, else rendered from blocks."""
    if message.raw is not None:
        return cast(dict[str, Any], message.raw)
    role = "assistant" if message.role == "assistant" else "user"
    content: Any
    if message.content_is_text and all(isinstance(b, Text) for b in message.blocks):
        content = "".join(b.text for b in message.blocks if isinstance(b, Text))
    else:
        content = [_render_block(b) for b in message.blocks]
    return {"role": role, "content": content, **message.extra}


def from_anthropic(messages: Sequence[Any]) -> tuple[Message, ...]:
    """Anthropic messages as `Message`s."""
    return tuple(message_from_anthropic(m, i) for i, m in enumerate(messages))


def to_anthropic(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """`Message`s as Anthropic messages."""
    return [message_to_anthropic(m) for m in messages]
