"""Counting text and chat requests, and cutting text to a token count, for a model."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tokenpilot._config import load_config
from tokenpilot._exceptions import InputError
from tokenpilot._models._registry import get_model
from tokenpilot._tokens._tokenizer import Tokenizer, anthropic_api_tokenizer, get_tokenizer

# OpenAI's documented accounting for chat models (openai-cookbook, "How to count tokens with
# tiktoken"): every message costs 3 tokens of framing, a `name` 1 more, and every reply is primed
# with 3 tokens (<|start|>assistant<|message|>).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
# Not documented by OpenAI; the framing observed around tool calls and tool definitions.
TOKENS_PER_TOOL_CALL = 4
TOKENS_PER_TOOL_DEFINITION = 8
TOOLS_PREAMBLE = 12
# Images: OpenAI bills a low-detail image 85 tokens and a 1024x1024 high-detail one 765;
# Anthropic about (width x height) / 750, at most ~1,600. Without dimensions, assume those.
OPENAI_IMAGE_TOKENS = 765
ANTHROPIC_IMAGE_TOKENS = 1_600


def tokenizer_for(model: str | None = None) -> Tokenizer:
    """The tokenizer tokenpilot uses for `model` (default model when None).

    >>> tok = tokenizer_for("gpt-4o")
    >>> tok.name, tok.exact, tok.count("hello world")
    ('o200k_base', True, 2)
    """
    info = get_model(model)
    if info.tokenizer == "anthropic-api":
        settings = load_config().section("anthropic")
        url = settings.get("count_tokens_url") or "https://api.anthropic.com/v1/messages/count_tokens"
        key_env = settings.get("api_key_env") or "ANTHROPIC_API_KEY"
        return anthropic_api_tokenizer(info.name, str(url), str(key_env))
    tokenizer: Tokenizer = get_tokenizer(info.tokenizer)
    return tokenizer


def count_tokens(text: str, model: str | None = None) -> int:
    """Tokens in `text` for `model` (exact, or an estimate when the model's tokenizer is not shipped).

    >>> count_tokens("hello world", model="gpt-4o")
    2
    """
    if not isinstance(text, str):
        raise InputError(f"count_tokens needs a str, got {type(text).__name__}")
    return tokenizer_for(model).count(text)


def _text_of(content: Any) -> Iterable[str | int]:
    """Text pieces of a content value (str, content parts or blocks); ints are image token costs."""
    if content is None:
        return
    if isinstance(content, str):
        yield content
        return
    if isinstance(content, Mapping):
        content = [content]
    if not isinstance(content, Sequence):
        raise InputError(f"message content must be a string or a list of parts, got {type(content).__name__}")
    for part in content:
        if isinstance(part, str):
            yield part
            continue
        if not isinstance(part, Mapping):
            raise InputError(f"content part must be an object, got {type(part).__name__}")
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text"):
            yield str(part.get("text", ""))
        elif kind in ("image_url", "input_image"):
            detail = (
                (part.get("image_url") or {}).get("detail")
                if isinstance(part.get("image_url"), Mapping)
                else None
            )
            yield 85 if detail == "low" else OPENAI_IMAGE_TOKENS
        elif kind == "image":
            yield ANTHROPIC_IMAGE_TOKENS
        elif kind == "tool_use":
            yield str(part.get("name", ""))
            yield json.dumps(part.get("input", {}), ensure_ascii=False)
            yield TOKENS_PER_TOOL_CALL
        elif kind == "tool_result":
            yield from _text_of(part.get("content"))
            yield TOKENS_PER_TOOL_CALL
        elif kind == "thinking":
            yield str(part.get("thinking", ""))
        elif kind == "redacted_thinking":
            yield str(part.get("data", ""))
        else:  # unknown part kinds (documents, audio…) are counted by their JSON, not dropped
            yield json.dumps(part, ensure_ascii=False, sort_keys=True)


def _message_pieces(message: Mapping[str, Any]) -> Iterable[str | int]:
    yield TOKENS_PER_MESSAGE
    yield str(message.get("role", ""))
    yield from _text_of(message.get("content"))
    if message.get("name"):
        yield str(message["name"])
        yield TOKENS_PER_NAME
    for call in message.get("tool_calls") or ():
        function = call.get("function", {}) if isinstance(call, Mapping) else {}
        yield TOKENS_PER_TOOL_CALL
        yield str(function.get("name", ""))
        yield str(function.get("arguments", ""))
    if message.get("function_call"):
        call = message["function_call"]
        yield TOKENS_PER_TOOL_CALL
        yield str(call.get("name", ""))
        yield str(call.get("arguments", ""))


def _tool_pieces(tools: Sequence[Any]) -> Iterable[str | int]:
    if tools:
        yield TOOLS_PREAMBLE
    for tool in tools:
        yield TOKENS_PER_TOOL_DEFINITION
        yield json.dumps(tool, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def count_messages(
    messages: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    model: str | None = None,
    tools: Sequence[Any] | None = None,
) -> int:
    """Prompt tokens of a chat request: OpenAI Chat or Anthropic Messages.

    `messages` is a list of messages or a whole request body (`{"model", "messages", "system",
    "tools", …}`); the body's model is used when `model` is None. Message framing follows
    OpenAI's documented rule (3 per message, 1 per name, 3 to prime the reply); tool calls count
    their name and arguments; tool schemas count their JSON.

    >>> count_messages([{"role": "user", "content": "hello world"}], model="gpt-4o")
    9
    """
    system: Any = None
    if isinstance(messages, Mapping):
        body = messages
        if "messages" not in body:
            raise InputError("a request body needs a 'messages' list")
        model = model or body.get("model")
        tools = tools if tools is not None else body.get("tools")
        system = body.get("system")
        messages = body["messages"]
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise InputError("messages must be a list of message objects")
    tokenizer = tokenizer_for(model)
    pieces: list[str | int] = [REPLY_PRIMING]
    if system:
        pieces += [TOKENS_PER_MESSAGE, "system", *_text_of(system)]
    for message in messages:
        if not isinstance(message, Mapping):
            raise InputError(f"each message must be an object, got {type(message).__name__}")
        pieces += _message_pieces(message)
    pieces += _tool_pieces(tools or ())
    # Each value is counted on its own, as OpenAI's reference implementation does.
    return sum(p if isinstance(p, int) else tokenizer.count(p) for p in pieces)


def truncate_to_tokens(text: str, n: int, model: str | None = None) -> str:
    """The longest prefix of `text` cut on a token boundary with at most `n` tokens.

    Never cuts inside a UTF-8 character; `count_tokens(result) <= n` always holds.

    >>> truncate_to_tokens("hello world, how are you", 2, model="gpt-4o")
    'hello world'
    """
    if n < 0:
        raise InputError(f"token count must be >= 0, got {n}")
    tokenizer = tokenizer_for(model)
    if tokenizer.count(text) <= n:
        return text
    tokens = tokenizer.encode(text)
    keep = min(len(tokens), n)
    if not tokenizer.exact:  # estimate: proxy ids, so scale down before checking
        keep = min(keep, int(n / getattr(tokenizer, "factor", 1.0)))
    while keep > 0:
        prefix = _decode_prefix(tokenizer, tokens[:keep])
        if prefix and text.startswith(prefix) and tokenizer.count(prefix) <= n:
            return prefix
        keep -= 1
    return ""


def _decode_prefix(tokenizer: Tokenizer, tokens: Sequence[int]) -> str:
    """Decode, dropping a trailing partial UTF-8 character rather than inserting U+FFFD."""
    decode_bytes = getattr(tokenizer, "decode_bytes", None)
    if decode_bytes is None:
        base = getattr(tokenizer, "_base", None)
        decode_bytes = getattr(base, "decode_bytes", None)
    if decode_bytes is None:
        text = tokenizer.decode(tokens)
        return text.rstrip("\ufffd")
    raw: bytes = decode_bytes(tokens)
    for cut in range(len(raw), max(-1, len(raw) - 4), -1):
        try:
            return raw[:cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return ""
