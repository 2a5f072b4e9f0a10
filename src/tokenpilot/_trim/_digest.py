"""Digests: facts a reducer needs from every line of an output, gathered as the lines pass.

A streamed output is held only as a sketch, so what must be true of the whole (every commit of a
log, every file of a diff with its +/- counts, the true size of each directory of a listing) is
gathered line by line by a digest, streaming or not, and shown first as notes.
"""

from __future__ import annotations

from typing import Protocol

from tokenpilot._tokens import Tokenizer

# Notes take at most this share of the budget: the rest shows the output itself.
NOTES_SHARE = 0.75


class Digest(Protocol):
    def add(self, line: str) -> None: ...

    def notes(self) -> list[str]: ...

    def rest_note(self, left_out: int) -> str: ...


def fitted_notes(digest: Digest, limit: int, tokenizer: Tokenizer) -> tuple[str, ...]:
    """The digest's notes, first ones first, within `NOTES_SHARE` of `limit`; the rest counted."""
    notes = digest.notes()
    room = int(limit * NOTES_SHARE)
    kept: list[str] = []
    used = 0
    for n, note in enumerate(notes):
        cost = tokenizer.count(note + "\n")
        left = len(notes) - n - 1
        reserve = tokenizer.count(digest.rest_note(left) + "\n") if left else 0
        if used + cost + reserve > room:
            rest = digest.rest_note(len(notes) - n)
            if used + tokenizer.count(rest + "\n") <= room:
                kept.append(rest)
            break
        kept.append(note)
        used += cost
    return tuple(kept)
