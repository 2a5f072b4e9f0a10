"""Exact token counting with bundled encodings, and labelled estimates for other models."""

from tokenpilot._tokens._count import count_messages, count_tokens, tokenizer_for, truncate_to_tokens
from tokenpilot._tokens._tokenizer import FAMILY_FACTORS, Tokenizer, get_tokenizer

__all__ = [
    "FAMILY_FACTORS",
    "Tokenizer",
    "count_messages",
    "count_tokens",
    "get_tokenizer",
    "tokenizer_for",
    "truncate_to_tokens",
]
