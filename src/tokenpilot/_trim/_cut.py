"""Cutting one piece of text to a token count from its start or its end, on character boundaries."""

from __future__ import annotations

from tokenpilot._tokens import Tokenizer


def _factor(tokenizer: Tokenizer) -> float:
    return float(getattr(tokenizer, "factor", 1.0))


def prefix_to_tokens(text: str, limit: int, tokenizer: Tokenizer) -> str:
    """The longest prefix of `text` (cut on a token boundary) that counts at most `limit`."""
    if limit <= 0:
        return ""
    if tokenizer.count(text) <= limit:
        return text
    ids = tokenizer.encode(text)
    keep = min(len(ids), int(limit / _factor(tokenizer)))
    while keep > 0:
        piece = tokenizer.decode(ids[:keep]).rstrip("\ufffd")
        if text.startswith(piece) and tokenizer.count(piece) <= limit:
            return piece
        keep -= 1
    return ""


def suffix_to_tokens(text: str, limit: int, tokenizer: Tokenizer) -> str:
    """The longest suffix of `text` (cut on a token boundary) that counts at most `limit`."""
    if limit <= 0:
        return ""
    if tokenizer.count(text) <= limit:
        return text
    ids = tokenizer.encode(text)
    keep = min(len(ids), int(limit / _factor(tokenizer)))
    while keep > 0:
        piece = tokenizer.decode(ids[len(ids) - keep :]).lstrip("\ufffd")
        if text.endswith(piece) and tokenizer.count(piece) <= limit:
            return piece
        keep -= 1
    return ""
