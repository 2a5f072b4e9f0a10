"""Scopes: budget paths such as `acme/fileorg/phase-2/builder`; a budget limits everything beneath it."""

from __future__ import annotations

from functools import lru_cache

from tokenpilot._exceptions import InputError

MAX_SCOPE_LENGTH = 400


def normalize_scope(scope: str) -> str:
    """The canonical form of a scope path: no outer slashes, no empty or dot segments.

    >>> normalize_scope("/acme/fileorg/")
    'acme/fileorg'
    """
    if not isinstance(scope, str):
        raise InputError(f"a scope is a string path like 'acme/project', got {scope!r}")
    return _normalized(scope)


@lru_cache(maxsize=4096)  # a proxy normalises the same few scopes on every call (a per-character scan)
def _normalized(scope: str) -> str:
    cleaned = scope.strip().strip("/")
    if not cleaned:
        raise InputError("a scope must not be empty (use a path like 'acme/project')")
    if len(cleaned) > MAX_SCOPE_LENGTH:
        raise InputError(f"scope is longer than {MAX_SCOPE_LENGTH} characters: {cleaned[:40]!r}…")
    segments = cleaned.split("/")
    for segment in segments:
        if segment.strip() != segment or segment in ("", ".", ".."):
            raise InputError(f"invalid scope {scope!r}: empty, '.', '..' or padded segment {segment!r}")
        if any(ord(ch) < 32 for ch in segment):
            raise InputError(f"invalid scope {scope!r}: control character in a segment")
    return cleaned


def enclosing_scopes(scope: str) -> list[str]:
    """Every scope whose budget applies to `scope`, outermost first (the scope itself last).

    >>> enclosing_scopes("acme/fileorg/builder")
    ['acme', 'acme/fileorg', 'acme/fileorg/builder']
    """
    parts = normalize_scope(scope).split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def is_within(scope: str, parent: str) -> bool:
    """True when `scope` is `parent` or lies beneath it (`acme/x` is within `acme`, `acmex` is not)."""
    return scope == parent or scope.startswith(parent + "/")


def subtree_bounds(parent: str) -> tuple[str, str]:
    """Half-open string range holding every strict descendant of `parent` in binary collation.

    `/` is 0x2F and `0` is 0x30, so `parent/…` sorts in [`parent/`, `parent0`): an index range scan
    instead of a LIKE whose wildcards would need escaping.
    """
    return parent + "/", parent + "0"
