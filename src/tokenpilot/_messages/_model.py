"""One message model for OpenAI Chat Completions and Anthropic Messages.

A `Conversation` is a provider-neutral list of `Message`s made of blocks (text, image, tool call,
tool result, thinking, opaque). Each message read from JSON keeps that JSON in `raw`; while a
message is unchanged it is written back exactly as read, so a round trip is lossless. A message
built or changed by tokenpilot has `raw=None` and is rendered from its blocks (unknown keys of the
original are kept in `extra`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Provider = Literal["openai", "anthropic"]
Role = Literal["system", "developer", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class Text:
    """Plain text."""

    text: str


@dataclass(frozen=True, slots=True)
class Image:
    """An image part, kept as the provider's JSON (it is never rewritten, only kept or dropped)."""

    raw: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call: OpenAI `tool_calls[]` entry or Anthropic `tool_use` block.

    `arguments` is the JSON text of the arguments (OpenAI's form; Anthropic's `input` object is
    serialised compactly).
    """

    id: str
    name: str
    arguments: str
    raw: Mapping[str, Any] | None = None

    def argument_values(self) -> dict[str, Any]:
        """The arguments parsed as an object ({} when they are not a JSON object)."""
        try:
            value = json.loads(self.arguments)
        except (TypeError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A tool's answer: an OpenAI `tool` message or an Anthropic `tool_result` block."""

    call_id: str
    content: tuple[Text | Image, ...]
    is_error: bool = False
    raw: Mapping[str, Any] | None = None
    # Anthropic allows `content` as a plain string; remembered to render the same shape.
    content_is_text: bool = True

    @property
    def text(self) -> str:
        return "".join(part.text for part in self.content if isinstance(part, Text))


@dataclass(frozen=True, slots=True)
class Thinking:
    """An Anthropic thinking / redacted_thinking block, kept verbatim."""

    raw: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Opaque:
    """A part tokenpilot does not interpret (documents, audio…), kept verbatim."""

    raw: Mapping[str, Any]


Block = Text | Image | ToolCall | ToolResult | Thinking | Opaque


def _block_text(block: Block) -> str:
    if isinstance(block, Text):
        return block.text
    if isinstance(block, Opaque) and block.raw.get("type") == "text":
        return str(block.raw.get("text", ""))
    return ""


@dataclass(frozen=True, slots=True)
class Message:
    """One message. `raw` is the JSON it was read from, None once tokenpilot changed it."""

    role: Role
    blocks: tuple[Block, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] | None = None
    # OpenAI: content given as a string (True) or as a list of parts (False).
    content_is_text: bool = True

    @property
    def text(self) -> str:
        """The message's own text (not tool results' text), verbatim text parts included."""
        return "".join(_block_text(block) for block in self.blocks)

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(block for block in self.blocks if isinstance(block, ToolCall))

    @property
    def tool_results(self) -> tuple[ToolResult, ...]:
        return tuple(block for block in self.blocks if isinstance(block, ToolResult))

    def with_blocks(self, blocks: tuple[Block, ...]) -> Message:
        """A changed copy (no longer the original JSON)."""
        return replace(self, blocks=blocks, raw=None)


@dataclass(frozen=True, slots=True)
class Conversation:
    """A whole request: messages plus everything else of the body (model, tools, top-level system).

    `shape` is how it came in: `"list"` (a bare messages array) or `"body"` (a request object).
    For Anthropic the top-level `system` stays in `body` and is never rewritten.
    """

    provider: Provider
    messages: tuple[Message, ...]
    body: Mapping[str, Any] = field(default_factory=dict)
    shape: Literal["list", "body"] = "list"

    def with_messages(self, messages: tuple[Message, ...]) -> Conversation:
        return replace(self, messages=messages)
