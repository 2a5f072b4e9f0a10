"""The names a tool output mentions, kept as an index in the marker that replaces it.

A masked output leaves `names: a/b.py, Table.add_column, missing_columns, ...` in its marker: the
paths, dotted names, identifiers and short string literals it contained, in order of first
appearance, within a share of its size. The agent still sees what the output was about (and what
to read again); names already listed by an earlier marker are not repeated.
"""

from __future__ import annotations

import re

from tokenpilot._tokens import Tokenizer

_NAME = re.compile(
    "|".join(
        (
            r"(?:[\w.-]+/)+[\w.-]+\.\w+",  # a/b/c.py
            r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\b",  # module.Class.method
            r"\b_*[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+_*\b",  # snake_case
            r"\b[A-Za-z][a-z0-9]+(?:[A-Z][A-Za-z0-9]*)+\b",  # CamelCase
            r"\"[^\"\n]{4,80}\"|'[^'\n]{4,80}'",  # short string literals and messages
        )
    )
)
SEPARATOR = ", "
INDEX_LABEL = "; names: "


def names_in(text: str) -> list[str]:
    """Distinct names of 4+ characters in `text`, in order of first appearance.

    >>> names_in("see src/app.py: def load_config(): Config.from_env() and load_config")
    ['src/app.py', 'load_config', 'Config.from_env']
    """
    seen: dict[str, None] = {}
    for found in _NAME.finditer(text):
        name = found.group(0)
        if len(name) >= 4 and name not in seen:
            seen[name] = None
    return list(seen)


def name_index(text: str, budget_tokens: int, tokenizer: Tokenizer, known: str = "") -> str:
    """The names of `text` not already in `known`, joined, within `budget_tokens` ("" if none).

    >>> from tokenpilot import tokenizer_for
    >>> name_index("def parse_args(): return read_file('a/b.txt')", 20, tokenizer_for("gpt-4o"))
    "parse_args, read_file, 'a/b.txt'"
    """
    if budget_tokens <= 0:
        return ""
    out: list[str] = []
    used = 0
    for name in names_in(text):
        if name in known:
            continue
        cost = tokenizer.count(name) + 1  # the separator
        if used + cost > budget_tokens:
            break
        out.append(name)
        used += cost
    return SEPARATOR.join(out)
