"""Exact prompt counts, message by message, cached: the sum equals `tp.count_messages` of the body."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tokenpilot._messages import Conversation, Message
from tokenpilot._messages._anthropic import message_to_anthropic
from tokenpilot._messages._openai import message_to_openai
from tokenpilot._tokens import Tokenizer
from tokenpilot._tokens._count import (
    REPLY_PRIMING,
    TOKENS_PER_MESSAGE,
    _message_pieces,
    _text_of,
    _tool_pieces,
)


class MessageCounter:
    """Tokens per message for one tokenizer and provider, cached by message identity."""

    def __init__(self, tokenizer: Tokenizer, provider: str) -> None:
        self.tokenizer = tokenizer
        self.provider = provider
        # id -> (message, tokens); holding the message keeps its id from being reused.
        self._cache: dict[int, tuple[Message, int]] = {}
        self._fixed: dict[str, int] = {}  # system + tools JSON -> tokens
        self._texts: dict[str, int] = {}

    def render(self, message: Message) -> dict[str, Any]:
        if self.provider == "anthropic":
            return message_to_anthropic(message)
        return message_to_openai(message)

    def tokens(self, message: Message) -> int:
        hit = self._cache.get(id(message))
        if hit is not None and hit[0] is message:
            return hit[1]
        count = self.tokenizer.count
        total = sum(p if isinstance(p, int) else count(p) for p in _message_pieces(self.render(message)))
        if len(self._cache) > 50_000:  # a long-lived compactor: forget, do not grow without bound
            self._cache.clear()
        self._cache[id(message)] = (message, total)
        return total

    def text_tokens(self, text: str) -> int:
        # Old outputs are weighed again every turn; a str caches its hash, so a hit is cheap.
        hit = self._texts.get(text)
        if hit is None:
            hit = self.tokenizer.count(text)
            if len(self._texts) > 20_000:
                self._texts.clear()
            self._texts[text] = hit
        return hit

    def fixed(self, conversation: Conversation) -> int:
        """Tokens outside the messages: reply priming, Anthropic's top-level system, tool schemas."""
        system, tools = conversation.body.get("system"), conversation.body.get("tools")
        if not system and not tools:
            return REPLY_PRIMING
        key = json.dumps([system, tools], sort_keys=True, default=str)
        hit = self._fixed.get(key)
        if hit is None:
            hit = self._count_fixed(conversation)
            if len(self._fixed) > 64:
                self._fixed.clear()
            self._fixed[key] = hit
        return hit

    def _count_fixed(self, conversation: Conversation) -> int:
        count = self.tokenizer.count
        pieces: list[str | int] = [REPLY_PRIMING]
        system = conversation.body.get("system")
        if system:
            pieces += [TOKENS_PER_MESSAGE, "system", *_text_of(system)]
        tools = conversation.body.get("tools")
        if isinstance(tools, Sequence):
            pieces += list(_tool_pieces(tools))
        return sum(p if isinstance(p, int) else count(p) for p in pieces)
