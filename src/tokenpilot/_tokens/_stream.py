"""Counting a text of any size in bounded memory, exactly: chunks are cut where the pre-tokenizer cuts."""

from __future__ import annotations

import re
from collections.abc import Iterable

from tokenpilot._tokens._tokenizer import Tokenizer

# A newline followed by a letter or digit: no pre-tokenizer pattern of the bundled encodings spans it
# (runs of newlines and punctuation+newline[/] end there; letters never start with a newline).
_SAFE_CUT = re.compile(r"\n(?=[^\W_])")
STREAM_CHUNK_CHARS = 1 << 20


def _last_safe_cut(text: str, after: int) -> int | None:
    """The last position past `after` where text may be cut without changing its count, or None."""
    at = len(text)
    while (newline := text.rfind("\n", after, at)) >= 0:
        if _SAFE_CUT.match(text, newline):
            return newline + 1
        at = newline
    return None


def count_stream(
    pieces: Iterable[str], tokenizer: Tokenizer, *, chunk_chars: int = STREAM_CHUNK_CHARS
) -> int:
    """Tokens of the text the `pieces` make up, in memory bounded by `chunk_chars` (not by the text).

    The text is counted in chunks cut only after a newline that a letter or digit follows, where
    the pre-tokenizer cuts too, so an exact tokenizer gives exactly `count(whole text)`; a text with
    no such place is held until it has one. (An estimate rounds each chunk up, so it may be higher
    by less than one token per chunk.)

    >>> from tokenpilot._tokens import tokenizer_for
    >>> tok = tokenizer_for("gpt-4o")
    >>> text = "def f():\\n    return 1\\n\\n" * 1000
    >>> count_stream([text[:999], text[999:]], tok, chunk_chars=100) == tok.count(text)
    True
    """
    total = 0
    pending = ""
    searched = 0  # pending[:searched] holds no safe cut
    for piece in pieces:
        pending += piece
        if len(pending) < chunk_chars:
            continue
        cut = _last_safe_cut(pending, searched)
        if cut is None:
            searched = max(0, len(pending) - 1)  # the last newline's follower is not known yet
            continue
        total += tokenizer.count(pending[:cut])
        pending, searched = pending[cut:], 0
    return total + tokenizer.count(pending)
