"""Code-aware terms: what BM25 and the name matching see in a task and in a file.

An identifier gives itself (lowercased) and, when it is compound, its parts: `parse_expr` →
`parse_expr`, `parse`, `expr`; `HTTPAdapter` → `httpadapter`, `http`, `adapter`. Dotted names and
paths give their segments the same way (`sympy.core.expr` → `sympy`, `core`, `expr`). Very common
English and keyword words are dropped.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePosixPath

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
        "not",
        "no",
        "can",
        "could",
        "should",
        "would",
        "may",
        "might",
        "do",
        "does",
        "did",
        "done",
        "so",
        "than",
        "then",
        "there",
        "these",
        "those",
        "they",
        "them",
        "their",
        "we",
        "our",
        "you",
        "your",
        "he",
        "she",
        "his",
        "her",
        "i",
        "me",
        "my",
        "what",
        "which",
        "who",
        "when",
        "where",
        "why",
        "how",
        "all",
        "any",
        "each",
        "some",
        "such",
        "only",
        "also",
        "just",
        "more",
        "most",
        "other",
        "own",
        "same",
        "very",
        "too",
        "here",
        "out",
        "up",
        "down",
        "over",
        "under",
        "again",
        "further",
        "once",
        "about",
        "above",
        "below",
        "after",
        "before",
        "between",
        "both",
        "few",
        "while",
        "because",
        "until",
        "against",
        "get",
        "got",
        "use",
        "used",
        "using",
        "like",
        "one",
        "two",
        "new",
        "make",
        "made",
        "see",
        "seems",
        "seem",
        "want",
        "way",
        "work",
        "works",
        "need",
        "needs",
        "self",
        "cls",
        "def",
        "return",
        "import",
        "none",
        "true",
        "false",
        "pass",
        "else",
        "elif",
        "try",
        "except",
        "finally",
        "raise",
        "lambda",
        "class",
        "var",
        "let",
        "const",
        "function",
        "func",
        "fn",
        "pub",
        "end",
        "begin",
    ]
)
_MIN_TERM = 2
# a word is a run of [A-Za-z0-9_] without its leading digits: as bytes, every other byte (non-ASCII
# included) becomes a space, and bytes.split finds the runs several times faster than _WORD.findall
_RUN_BYTES = bytes(c if chr(c).isascii() and (chr(c).isalnum() or c == 0x5F) else 0x20 for c in range(256))
_DIGITS = "0123456789"
_RUN_TERMS: dict[bytes, tuple[str, ...]] = {}
_RUN_TERMS_MAX = 100_000


@lru_cache(maxsize=200_000)
def identifier_terms(word: str) -> tuple[str, ...]:
    """The terms of one identifier: itself lowercased, then its parts if it is compound."""
    lowered = word.lower().strip("_")
    if len(lowered) < _MIN_TERM:
        return ()
    out = [] if lowered in STOPWORDS else [lowered]
    parts: list[str] = []
    for chunk in word.split("_"):
        # one case of ASCII letters is one part (most chunks): the regex only for the others
        if chunk.isascii() and chunk.isalpha() and (chunk.islower() or chunk.isupper()):
            parts.append(chunk.lower())
        elif chunk:
            parts.extend(p.lower() for p in _CAMEL.findall(chunk))
    if len(parts) > 1:
        out.extend(p for p in parts if len(p) >= _MIN_TERM and p not in STOPWORDS and p != lowered)
    return tuple(out)


def _run_terms(run: bytes) -> tuple[str, ...]:
    word = run.decode("ascii").lstrip(_DIGITS)
    if len(_RUN_TERMS) >= _RUN_TERMS_MAX:
        # a generation ends: most words of a large tree occur in a few files, and the common
        # ones are back after a few files (bounded memory, little recomputation)
        _RUN_TERMS.clear()
    # kept here only: the lru cache of identifier_terms would hold every word a second time
    terms = _RUN_TERMS[run] = identifier_terms.__wrapped__(word) if word else ()
    return terms


def forget_words() -> None:
    """Empty the word cache `text_terms` fills while a tree is scanned (it holds every distinct word)."""
    _RUN_TERMS.clear()


def text_terms(text: str) -> dict[str, int]:
    """Term frequencies of a text (identifiers and their parts), in the order they first occur.

    >>> text_terms("parse_expr(x2) + 2parse_expr é_HTTPAdapter")
    {'parse_expr': 2, 'parse': 2, 'expr': 2, 'x2': 1, 'httpadapter': 1, 'http': 1, 'adapter': 1}
    """
    runs = Counter(text.encode("utf-8", "surrogatepass").translate(_RUN_BYTES).split())
    counts: dict[str, int] = {}
    known = _RUN_TERMS.get
    # a plain dict in front of the lru cache: this loop runs for every distinct word of every file
    for run, count in runs.items():
        terms = known(run)
        if terms is None:
            terms = _run_terms(run)
        for term in terms:
            counts[term] = counts.get(term, 0) + count
    return counts


def path_terms(path: str) -> tuple[str, ...]:
    """Terms of a file's path: every directory and the stem, split like identifiers."""
    pure = PurePosixPath(path)
    out: list[str] = []
    for part in [*pure.parts[:-1], pure.stem]:
        for word in _WORD.findall(part):
            out.extend(identifier_terms(word))
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True, slots=True)
class Mentions:
    """What a task names: file paths, dotted names and code identifiers (original spelling)."""

    paths: tuple[str, ...]
    dotted: tuple[str, ...]
    identifiers: tuple[str, ...]


# a path may be absolute or start anywhere in a longer one: tracebacks name
# `/home/u/.venv/lib/python3.10/site-packages/pkg/mod.py`, links name
# `https://github.com/o/r/blob/<sha>/pkg/mod.py#L10`; rank matches the repository path they end with
_PATH_MENTION = re.compile(
    r"(?<![\w.-])(/?(?:[\w.-]+/)+[\w.-]+\.[A-Za-z]{1,5}|[\w-]+\.(?:py|pyx|js|ts|tsx|go|rs|java|c|h|cpp|rb))\b"
)
_DOTTED = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+\b")
_BACKTICKED = re.compile(r"`([^`\n]{2,80})`")
_CALLED = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\(")
_CODE_SHAPED = re.compile(
    r"^(?:_*[a-z0-9]+(?:_[a-z0-9]+)+_*|_*[A-Z][a-z0-9]+(?:[A-Z][A-Za-z0-9]*)+|_+\w+|[a-z]+[A-Z]\w*)$"
)
_FILE_SUFFIX = re.compile(
    r"\.(py|pyx|pyi|js|ts|tsx|go|rs|java|c|h|cpp|rb|rst|md|txt|cfg|toml|ini|yml|yaml|json)$"
)


_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>()\[\]`'\"]+")


def without_urls(text: str) -> str:
    """The text with its links blanked out.

    >>> without_urls("see https://github.com/o/r/issues/1 for `parse`")
    'see   for `parse`'
    """
    return _URL.sub(" ", text)


_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)|<img\b[^>]*>", re.DOTALL)
# a heading (markdown, bold line, <summary>) over an environment report: versions, platform, packages
_HEADING = re.compile(r"^\s*(?:#{1,6}\s|\*\*[^*]+\*\*:?\s*$|<summary>|<details>\s*<summary>)")
_REPORT_TITLE = re.compile(
    r"environment|versions?\b|system|installed|show_versions|platform|dependencies"
    r"|pip (?:freeze|list)|conda list",
    re.IGNORECASE,
)
# `numpy: 1.16.4`, `"version": "2.8",`, `- Python version: 3.9.0`, `scipy==1.3.0`, `cfgrib: None`,
# and the `"idna": {` of a JSON listing
_VERSION_LINE = re.compile(
    r"""^\s*[-*]?\s*"?[A-Za-z][\w .\-/()]{0,40}"?\s*(?::|==|=)\s*"""
    r"""(?:"?v?\d[\w.+\-]*"?|"?(?:None|null|installed|true|false)"?|""|\{)?,?\s*$"""
)
_FILLER_LINE = re.compile(r"^\s*(?:[{}\[\](),]*|-{3,}|={3,}|</?details>|```\w*)\s*$")
_REPORT_MIN_LINES = 5
_SECTION_MAX_LINES = 80


def without_reports(task: str) -> str:
    """The task without what names no code: HTML comments and environment reports.

    Issue templates hide instructions in HTML comments (images say nothing either), and bug reports
    paste version listings (`xr.show_versions()`, `python -m requests.help`, "Environment info")
    whose package names match the one file that prints versions. Dropped: a section under a heading
    about the environment or versions (up to the next heading or `</details>`), and any run of five
    or more `name: version` lines.

    >>> without_reports("bad parse\\n<!-- template -->\\n## Versions\\nnumpy: 1.2\\n## Steps\\ncall parse()")
    'bad parse\\n\\n## Steps\\ncall parse()'
    """
    lines = _HTML_COMMENT.sub("", task).split("\n")
    keep = [True] * len(lines)
    index = 0
    while index < len(lines):
        line = lines[index]
        if _HEADING.match(line) and _REPORT_TITLE.search(line) and index > 0:
            end = index + 1
            while end < len(lines) and end - index <= _SECTION_MAX_LINES:
                if _HEADING.match(lines[end]) and not _REPORT_TITLE.search(lines[end]):
                    break
                if lines[end].strip().lower() == "</details>":
                    end += 1
                    break
                end += 1
            keep[index:end] = [False] * (end - index)
            index = end
            continue
        index += 1
    start = 0
    while start < len(lines):
        end, versions = start, 0
        while end < len(lines):
            if _VERSION_LINE.match(lines[end]):
                versions += 1
            elif not _FILLER_LINE.match(lines[end]):
                break
            end += 1
        if versions >= _REPORT_MIN_LINES:
            keep[start:end] = [False] * (end - start)
        start = max(end, start + 1)
    return "\n".join(line for line, kept in zip(lines, keep, strict=True) if kept)


@dataclass(frozen=True, slots=True)
class ReadTask:
    """A task read once for ranking: its text without what names no code, and what it mentions."""

    text: str
    mentions: Mentions


def read_task(task: str) -> ReadTask:
    """The task cleaned (`without_reports`) and its mentions, done once per pack.

    >>> read_task("fix `parse`\\n<!-- template -->").mentions.identifiers
    ('parse',)
    """
    text = without_reports(task)
    return ReadTask(text, _mentions(text))


def task_mentions(task: str) -> Mentions:
    """File paths, dotted names and identifiers a task names.

    >>> task_mentions("calling `parse_expr` in sympy/parsing/sympy_parser.py fails").paths
    ('sympy/parsing/sympy_parser.py',)
    """
    return read_task(task).mentions


def _mentions(task: str) -> Mentions:
    """The mentions of a task already cleaned by `without_reports`."""
    paths = [m.group(1).lstrip("./") for m in _PATH_MENTION.finditer(task)]
    # a link's host and route (`github.com`, `blob`, `html`) name no code; the file a link points
    # at was taken as a path above
    task = without_urls(task)
    dotted = [d for d in _DOTTED.findall(task) if not _FILE_SUFFIX.search(d) and not d[0].isdigit()]
    identifiers: list[str] = []
    for snippet in _BACKTICKED.findall(task):
        identifiers.extend(w for w in _WORD.findall(snippet) if len(w) >= 3)
    identifiers.extend(w for w in _CALLED.findall(task) if len(w) >= 3)
    identifiers.extend(w for w in _WORD.findall(task) if len(w) >= 4 and _CODE_SHAPED.match(w))
    for name in dotted:
        identifiers.extend(part for part in name.split(".") if len(part) >= 3)
    unique_ids = [w for w in dict.fromkeys(identifiers) if w.lower() not in STOPWORDS]
    return Mentions(tuple(dict.fromkeys(paths)), tuple(dict.fromkeys(dotted)), tuple(unique_ids))
