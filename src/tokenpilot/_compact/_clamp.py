"""Reducing one oversized text to a token budget.

`reduce_output` (tool outputs) uses the `trim` feature's reducers: the format is detected from the
tool's command and the content, and what an engineer would keep (failures, the exception, each
distinct diagnostic) survives. `head_tail` (summaries and other prose) keeps the head and tail
around a marker.
"""

from __future__ import annotations

from functools import lru_cache

from tokenpilot._tokens import Tokenizer
from tokenpilot._tokens._tokenizer import get_tokenizer

MARKER_PREFIX = "[tokenpilot:"


def clamp_marker(lines: int, tokens: int) -> str:
    return f"\n{MARKER_PREFIX} clamped, {lines:,} lines / {tokens:,} tokens elided from the middle]\n"


def spill_marker(text: str, lines: int, tokens: int) -> str:
    """Keep `text` whole in the spill store; the line naming its handle ("" when it cannot be kept).

    The handle is the content hash: `tokenpilot spill show HANDLE` prints the original bytes.
    """
    from tokenpilot._trim._settings import trim_settings
    from tokenpilot._trim._spill import spill

    settings = trim_settings()
    try:
        path = spill([text.encode("utf-8", "surrogatepass")], settings.spill_dir, settings.spill_ttl_days)
    except OSError:  # a full or read-only cache: the marker still gives the size
        return ""
    return (
        f"\n{MARKER_PREFIX} full output {lines:,} lines / {tokens:,} tokens, "
        f"`tokenpilot spill show {path.stem}`]"
    )


def reduce_output(text: str, max_tokens: int, tokenizer: Tokenizer, tool: str | None = None) -> str:
    """A tool output cut to at most `max_tokens` tokens by `tokenpilot._trim` (smart, by format;
    no spill file), with markers saying what was elided. Unchanged when it already fits.

    >>> from tokenpilot._tokens._tokenizer import bundled_tokenizer
    >>> log = "progress ok\\n" * 3000 + "ERROR: disk full\\n" + "progress ok\\n" * 3000
    >>> out = reduce_output(log, 100, bundled_tokenizer("o200k_base"))
    >>> "ERROR: disk full" in out and bundled_tokenizer("o200k_base").count(out) <= 100
    True
    """
    if len(text) <= max_tokens or tokenizer.count(text) <= max_tokens:
        return text
    if tokenizer.exact and tokenizer.name in ("o200k_base", "cl100k_base"):
        # Deterministic, so cached: an agent loop re-sends the same outputs every turn.
        return _trim_cached(text, max_tokens, tokenizer.name, tool)
    return _trim(text, max_tokens, tokenizer, tool)


def _trim(text: str, max_tokens: int, tokenizer: Tokenizer, tool: str | None) -> str:
    from tokenpilot._trim import trim_output

    return trim_output(text, max_tokens, tool=tool, tokenizer=tokenizer, spill=False).text


@lru_cache(maxsize=256)
def _trim_cached(text: str, max_tokens: int, encoding: str, tool: str | None) -> str:
    return _trim(text, max_tokens, get_tokenizer(encoding), tool)


def head_tail(text: str, max_tokens: int, tokenizer: Tokenizer) -> str:
    """`text` cut to at most `max_tokens` tokens: about 40% head and 60% tail, whole lines where
    possible, with a marker saying what was elided. Unchanged when it already fits.

    >>> from tokenpilot._tokens._tokenizer import bundled_tokenizer
    >>> out = head_tail("line\\n" * 5000, 100, bundled_tokenizer("o200k_base"))
    >>> "clamped" in out and bundled_tokenizer("o200k_base").count(out) <= 100
    True
    """
    if len(text) <= max_tokens or tokenizer.count(text) <= max_tokens:
        return text
    return _reduce(text, max_tokens, tokenizer)


def _reduce(text: str, max_tokens: int, tokenizer: Tokenizer) -> str:
    total = tokenizer.count(text)
    ids = tokenizer.encode(text)
    room = max_tokens - tokenizer.count(clamp_marker(len(text.splitlines()), total)) - 4
    while room > 0:
        head_n = room * 2 // 5
        tail_n = room - head_n
        head = tokenizer.decode(ids[:head_n])
        tail = tokenizer.decode(ids[len(ids) - tail_n :]) if tail_n else ""
        # Whole lines: a partial first/last line is harder to read than a missing one.
        if "\n" in head[len(head) // 2 :]:
            head = head[: head.rindex("\n") + 1]
        if "\n" in tail[: len(tail) // 2]:
            tail = tail[tail.index("\n") + 1 :]
        head = head.replace("\ufffd", "")
        tail = tail.replace("\ufffd", "")
        kept_lines = head.count("\n") + tail.count("\n")
        elided_lines = max(0, text.count("\n") - kept_lines)
        elided_tokens = max(0, total - tokenizer.count(head) - tokenizer.count(tail))
        out = head + clamp_marker(elided_lines, elided_tokens) + tail
        if tokenizer.count(out) <= max_tokens:
            return out
        room -= max(1, room // 10)
    short = f"{MARKER_PREFIX} output of {total:,} tokens elided]"
    return short if tokenizer.count(short) <= max_tokens else ""
