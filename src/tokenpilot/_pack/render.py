"""Stage 6: the packed text — a header, the task, the tree of shown paths, then the files.

Three formats with the same parts in the same order:

- `xml`: `<pack …>` with attributes for budget, tokens and files per tier; `<task>`, `<tree>` and one
  `<file path="…" tier="full|slices|outline">` per shown file; file contents are not escaped (as Repomix);
- `markdown`: headings, the tree in a fenced block, each file fenced with its language (the fence is
  longer than any backtick run inside);
- `plain`: `=== … ===` separators.

Files come most relevant first; the tree lists every shown path (any tier) in path order and ends
with how many files were left out. Every part is a pure function of its inputs: same bytes out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from tokenpilot._exceptions import InputError
from tokenpilot._pack.outline import LANGUAGE_OF_SUFFIX

FORMATS = ("xml", "markdown", "plain")
TIERS = ("full", "slices", "outline", "path")
# Markdown fences: every outline language, plus text formats and a few names fences spell differently.
_FENCE_LANGUAGE = {
    **LANGUAGE_OF_SUFFIX,
    ".jsx": "jsx",
    ".rb": "ruby",
    ".sh": "bash",
    ".md": "markdown",
    ".rst": "rst",
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "json",
    ".html": "html",
    ".css": "css",
    ".sql": "sql",
    ".cfg": "ini",
    ".ini": "ini",
}
_BACKTICKS = re.compile(r"`{3,}")


@dataclass(frozen=True, slots=True)
class ShownFile:
    """A file as it appears in the text: its path, tier and the body shown (empty for `path`)."""

    path: str
    tier: str
    body: str


def check_format(fmt: str) -> str:
    """`fmt` if it is a known format, else an InputError naming the known ones."""
    if fmt not in FORMATS:
        raise InputError(f"unknown pack format {fmt!r} (choose from {', '.join(FORMATS)})")
    return fmt


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def header(fmt: str, *, budget: int, tokens: int, counts: Mapping[str, int], omitted: int) -> str:
    """The first line(s): budget, tokens used and how many files at each tier."""
    full, slices, outline, path = (counts.get(tier, 0) for tier in TIERS)
    if fmt == "xml":
        return (
            f'<pack budget="{budget}" tokens="{tokens}" full="{full}" slices="{slices}" outline="{outline}" '
            f'path="{path}" omitted="{omitted}">\n'
        )
    summary = (
        f"budget {budget} tokens, used {tokens}; files: {full} full, {slices} slices, {outline} outline, "
        f"{path} path only, {omitted} omitted"
    )
    if fmt == "markdown":
        return f"# Packed context\n\n{summary}\n\n"
    return f"tokenpilot pack: {summary}\n\n"


def task_section(fmt: str, task: str) -> str:
    """The task, verbatim."""
    body = task.rstrip("\n")
    if fmt == "xml":
        return f"<task>\n{body}\n</task>\n"
    if fmt == "markdown":
        return f"## Task\n\n{body}\n\n"
    return f"=== task ===\n{body}\n\n"


def tree_open(fmt: str) -> str:
    if fmt == "xml":
        return "<tree>\n"
    if fmt == "markdown":
        return "## Files\n\n```text\n"
    return "=== files ===\n"


def tree_line(path: str) -> str:
    """One shown path in the tree (the whole cost of the `path` tier)."""
    return path + "\n"


def tree_close(fmt: str, omitted: int) -> str:
    """The end of the tree, saying how many files were left out."""
    note = f"({omitted} more files not shown)\n" if omitted else ""
    if fmt == "xml":
        return f"{note}</tree>\n"
    if fmt == "markdown":
        return f"{note}```\n\n"
    return f"{note}\n"


def file_block(fmt: str, path: str, tier: str, body: str) -> str:
    """One file at the `full`, `slices` or `outline` tier."""
    text = body if body.endswith("\n") or not body else body + "\n"
    if fmt == "xml":
        return f'<file path="{_attr(path)}" tier="{tier}">\n{text}</file>\n'
    if fmt == "markdown":
        longest = max((len(run) for run in _BACKTICKS.findall(text)), default=2)
        fence = "`" * max(3, longest + 1)
        language = (
            "text" if tier == "outline" else _FENCE_LANGUAGE.get(PurePosixPath(path).suffix.lower(), "")
        )
        label = "" if tier == "full" else f" ({tier})"
        return f"## {path}{label}\n\n{fence}{language}\n{text}{fence}\n\n"
    return f"=== {path} ({tier}) ===\n{text}\n"


def closing(fmt: str) -> str:
    return "</pack>\n" if fmt == "xml" else ""


def render(
    fmt: str,
    *,
    budget: int,
    tokens: int,
    task: str,
    files: Sequence[ShownFile],
    omitted: int,
) -> str:
    """The whole packed text. `files` in relevance order; the tree is sorted by path."""
    head, rest = render_parts(fmt, budget=budget, tokens=tokens, task=task, files=files, omitted=omitted)
    return head + rest


def render_parts(
    fmt: str,
    *,
    budget: int,
    tokens: int,
    task: str,
    files: Sequence[ShownFile],
    omitted: int,
) -> tuple[str, str]:
    """`render`'s text as its header and the rest, which does not depend on `tokens`.

    The header ends in a newline and the rest starts with a section's opening (`<task>`, `## Task`,
    `=== task`), where tiktoken's encodings always start a new piece: the text's count is the
    header's plus the rest's.
    """
    counts = {tier: sum(1 for f in files if f.tier == tier) for tier in TIERS}
    parts = [task_section(fmt, task), tree_open(fmt)]
    parts.extend(tree_line(f.path) for f in sorted(files, key=lambda f: f.path))
    parts.append(tree_close(fmt, omitted))
    parts.extend(file_block(fmt, f.path, f.tier, f.body) for f in files if f.tier != "path")
    parts.append(closing(fmt))
    head = header(fmt, budget=budget, tokens=tokens, counts=counts, omitted=omitted)
    return head, "".join(parts)
