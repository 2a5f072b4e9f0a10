"""Stage 3: an outline of a file — what it defines, where, and what it imports.

With tree-sitter (one prebuilt grammar package per language, in the `pack` extra) for Python,
JavaScript, TypeScript/TSX, Go, Rust, Java, C and C++: one line for the imports in brief, then each
class / function / method signature with its line number (nested ones indented), the first line of a
Python docstring under its definition, and `⋮` wherever lines were elided. Any other text file (or a
language whose grammar is not installed) gets a fallback: its first lines, then lines that look like
top-level definitions or headings.

    12│class Foo(Base):
    13│    \"\"\"A foo.\"\"\"
    ⋮
    20│    def bar(self, x: int) -> str:
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tree_sitter

log = logging.getLogger(__name__)

ELISION = "⋮"
_MAX_SIGNATURE_CHARS = 200
_MAX_IMPORTS_SHOWN = 12
_FALLBACK_HEAD_LINES = 8
_FALLBACK_MAX_LINES = 60


@dataclass(frozen=True, slots=True)
class Grammar:
    """How to outline one language: its grammar package and the node types that define things."""

    module: str
    function: str
    definitions: frozenset[str]
    imports: frozenset[str]
    containers: frozenset[str] = frozenset()  # nodes whose children may define (e.g. declaration lists)


_C_DEFS = frozenset({"function_definition", "struct_specifier", "enum_specifier", "union_specifier"})
_CPP_DEFS = _C_DEFS | {"class_specifier", "namespace_definition", "template_declaration"}
_JS_DEFS = frozenset(
    {
        "function_declaration",
        "generator_function_declaration",
        "class_declaration",
        "method_definition",
        "abstract_class_declaration",
        "interface_declaration",
        "type_alias_declaration",
        "enum_declaration",
        "abstract_method_signature",
        "method_signature",
    }
)
_JS_CONTAINERS = frozenset({"export_statement", "program", "class_body", "interface_body", "statement_block"})
GRAMMARS: dict[str, Grammar] = {
    "python": Grammar(
        "tree_sitter_python",
        "language",
        frozenset({"function_definition", "class_definition"}),
        frozenset({"import_statement", "import_from_statement", "future_import_statement"}),
        frozenset({"decorated_definition"}),
    ),
    "javascript": Grammar(
        "tree_sitter_javascript", "language", _JS_DEFS, frozenset({"import_statement"}), _JS_CONTAINERS
    ),
    "typescript": Grammar(
        "tree_sitter_typescript",
        "language_typescript",
        _JS_DEFS,
        frozenset({"import_statement"}),
        _JS_CONTAINERS,
    ),
    "tsx": Grammar(
        "tree_sitter_typescript", "language_tsx", _JS_DEFS, frozenset({"import_statement"}), _JS_CONTAINERS
    ),
    "go": Grammar(
        "tree_sitter_go",
        "language",
        frozenset({"function_declaration", "method_declaration", "type_declaration"}),
        frozenset({"import_declaration"}),
    ),
    "rust": Grammar(
        "tree_sitter_rust",
        "language",
        frozenset(
            {
                "function_item",
                "struct_item",
                "enum_item",
                "trait_item",
                "impl_item",
                "mod_item",
                "macro_definition",
            }
        ),
        frozenset({"use_declaration"}),
        frozenset({"declaration_list"}),
    ),
    "java": Grammar(
        "tree_sitter_java",
        "language",
        frozenset(
            {
                "class_declaration",
                "interface_declaration",
                "enum_declaration",
                "record_declaration",
                "method_declaration",
                "constructor_declaration",
            }
        ),
        frozenset({"import_declaration"}),
        frozenset({"class_body", "interface_body", "enum_body", "enum_body_declarations"}),
    ),
    "c": Grammar("tree_sitter_c", "language", _C_DEFS, frozenset({"preproc_include"})),
    "cpp": Grammar(
        "tree_sitter_cpp",
        "language",
        _CPP_DEFS,
        frozenset({"preproc_include", "using_declaration"}),
        frozenset({"declaration_list", "field_declaration_list"}),
    ),
}
LANGUAGE_OF_SUFFIX = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
}
# fallback: lines that look like a heading or a top-level definition in common text formats
_FALLBACK_DEFINITION = re.compile(
    r"^(#{1,6} |\[[^\]]+\]\s*$|[A-Za-z_][\w.-]*\s*[:=]"
    r"|(def|class|function|func|fn|sub|module|interface|type)\s)"
)
_local = threading.local()


def language_of(path: str) -> str | None:
    """The outline language of a path, from its suffix ('python', 'go', …), or None."""
    return LANGUAGE_OF_SUFFIX.get(PurePosixPath(path).suffix.lower())


@cache
def _language(name: str) -> tree_sitter.Language | None:
    grammar = GRAMMARS[name]
    try:
        import tree_sitter

        module = importlib.import_module(grammar.module)
        return tree_sitter.Language(getattr(module, grammar.function)())
    except (ImportError, AttributeError, ValueError) as exc:
        log.warning("no tree-sitter grammar for %s (%s); using the fallback outline", name, exc)
        return None


class TreeParser:
    """A language's tree-sitter parser that hands back the tree of the source it parsed last.

    The outline and the slices of a file parse the same bytes; examine asks for both in turn, so the
    second parse is free. One tree is kept per thread (`forget_tree` lets it go).
    """

    def __init__(self, name: str, parser: tree_sitter.Parser) -> None:
        self.name = name
        self._parser = parser

    def parse(self, source: bytes) -> tree_sitter.Tree:
        last = getattr(_local, "last_tree", None)
        if last is not None and last[0] == self.name and last[1] == source:
            tree: tree_sitter.Tree = last[2]
            return tree
        tree = self._parser.parse(source)
        _local.last_tree = (self.name, source, tree)
        return tree


def forget_tree() -> None:
    """Let go of the tree this thread parsed last."""
    _local.last_tree = None


def parser_for(name: str) -> TreeParser | None:
    """A tree-sitter parser for an outline language (one per thread), or None without its grammar."""
    parser = _parser(name)
    return TreeParser(name, parser) if parser is not None else None


def _parser(name: str) -> tree_sitter.Parser | None:
    # parsers are not thread-safe; one per thread and language
    parsers: dict[str, Any] = getattr(_local, "parsers", None) or {}
    _local.parsers = parsers
    if name not in parsers:
        language = _language(name)
        if language is None:
            return None
        import tree_sitter

        parsers[name] = tree_sitter.Parser(language)
    parser: tree_sitter.Parser = parsers[name]
    return parser


def outline(path: str, text: str) -> str:
    """An outline of `text`: imports in brief, definitions with line numbers, `⋮` for elisions.

    >>> print(outline("m.py", "import os\\n\\ndef f(x):\\n    '''Do f.'''\\n    return x\\n"))
    1│imports: os
    ⋮
    3│def f(x):
    4│    '''Do f.'''
    ⋮
    """
    document = PurePosixPath(path).suffix.lower()
    if document in _DOCUMENT_SUFFIXES:
        return document_outline(text, _DOCUMENT_SUFFIXES[document])
    language = language_of(path)
    parser = parser_for(language) if language else None
    if parser is None or language is None:
        return fallback_outline(text)
    source = text.encode("utf-8", "surrogatepass")
    tree = parser.parse(source)
    entries: list[tuple[int, str]] = []
    lines = text.splitlines()
    _collect(tree.root_node, GRAMMARS[language], source, lines, entries, depth=0, language=language)
    if not entries:
        return fallback_outline(text)
    return _join(entries, len(lines))


def _collect(
    node: tree_sitter.Node,
    grammar: Grammar,
    source: bytes,
    lines: list[str],
    entries: list[tuple[int, str]],
    *,
    depth: int,
    language: str,
) -> None:
    imports: list[tree_sitter.Node] = []
    for child in node.named_children:
        kind = child.type
        if kind in grammar.imports and depth == 0:
            imports.append(child)
        elif kind in grammar.definitions:
            _definition(child, grammar, source, lines, entries, depth=depth, language=language)
        elif kind in grammar.containers:
            _collect(child, grammar, source, lines, entries, depth=depth, language=language)
    if imports:
        entries.append((imports[0].start_point[0] + 1, _imports_line(imports, source, language)))
        entries.sort(key=lambda entry: entry[0])


def _definition(
    node: tree_sitter.Node,
    grammar: Grammar,
    source: bytes,
    lines: list[str],
    entries: list[tuple[int, str]],
    *,
    depth: int,
    language: str,
) -> None:
    body = node.child_by_field_name("body")
    if node.type == "template_declaration":
        inner = next((c for c in node.named_children if c.type in grammar.definitions), None)
        body = inner.child_by_field_name("body") if inner is not None else None
    end = body.start_byte if body is not None else node.end_byte
    if language == "python":
        # the header ends with its last field; comments before the body's first statement are not in it
        fields = [node.child_by_field_name(f) for f in ("name", "parameters", "superclasses", "return_type")]
        end = max((f.end_byte for f in fields if f is not None), default=end)
    signature = source[node.start_byte : end].decode("utf-8", "replace")
    if body is None or node.type in ("type_declaration", "macro_definition"):
        signature = signature.split("\n", 1)[0]
    signature = " ".join(signature.split())
    if language == "python":
        signature = signature.rstrip(":") + ":"
    elif body is not None and signature and not signature.endswith(("{", ";")):
        signature += " {…}"
    if len(signature) > _MAX_SIGNATURE_CHARS:
        signature = signature[: _MAX_SIGNATURE_CHARS - 1] + "…"
    row = node.start_point[0]
    indent = _indent_of(lines[row]) if row < len(lines) else ""
    entries.append((row + 1, indent + signature))
    if body is None:
        return
    if language == "python":
        doc = _python_docstring(body, source)
        if doc:
            doc_row = body.named_children[0].start_point[0]
            entries.append((doc_row + 1, _indent_of(lines[doc_row]) + doc))
    _collect(body, grammar, source, lines, entries, depth=depth + 1, language=language)


def _python_docstring(body: tree_sitter.Node, source: bytes) -> str | None:
    if not body.named_children:
        return None
    first = body.named_children[0]
    if first.type != "expression_statement" or not first.named_children:
        return None
    string = first.named_children[0]
    if string.type != "string":
        return None
    raw = source[string.start_byte : string.end_byte].decode("utf-8", "replace")
    quote_end = len(raw) - len(raw.lstrip("rRbBuUfF"))
    prefix, rest = raw[:quote_end], raw[quote_end:]
    quote = '"""' if rest.startswith('"""') else "'''" if rest.startswith("'''") else rest[:1]
    content = rest[len(quote) :]
    content = content[: -len(quote)] if content.endswith(quote) else content
    head = next((line.strip() for line in content.splitlines() if line.strip()), "")
    if not head:
        return None
    return f"{prefix}{quote}{head}{quote if head == content.strip() else ' …' + quote}"


def _imports_line(imports: list[tree_sitter.Node], source: bytes, language: str) -> str:
    names: list[str] = []
    for node in imports:
        if language == "python":
            module = node.child_by_field_name("module_name")
            if module is not None:
                names.append(source[module.start_byte : module.end_byte].decode("utf-8", "replace"))
                continue
            names.extend(
                source[c.start_byte : c.end_byte].decode("utf-8", "replace").split(" as ")[0]
                for c in node.children_by_field_name("name")
            )
            continue
        text = " ".join(source[node.start_byte : node.end_byte].decode("utf-8", "replace").split())
        quoted = re.findall(r"[\"'<]([^\"'<>]+)[\"'>]", text)
        names.extend(quoted or [text.removesuffix(";")])
    unique = list(dict.fromkeys(name for name in names if name))
    shown = ", ".join(unique[:_MAX_IMPORTS_SHOWN])
    more = len(unique) - _MAX_IMPORTS_SHOWN
    return f"imports: {shown}" + (f" (+{more} more)" if more > 0 else "")


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _join(entries: list[tuple[int, str]], total_lines: int) -> str:
    """Lines as `N│text`, with `⋮` where line numbers skip and after the last entry."""
    out: list[str] = []
    previous = 0
    for number, text in sorted(entries, key=lambda entry: entry[0]):
        if number <= previous:
            continue
        if number > previous + 1:
            out.append(ELISION)
        out.append(f"{number}│{text}")
        previous = number
    if previous < total_lines:
        out.append(ELISION)
    return "\n".join(out)


def fallback_outline(text: str) -> str:
    """First lines, then lines that look like headings or top-level definitions, with `⋮` between."""
    lines = text.splitlines()
    entries = [(n, line.rstrip()) for n, line in enumerate(lines[:_FALLBACK_HEAD_LINES], start=1)]
    for number, line in enumerate(lines[_FALLBACK_HEAD_LINES:], start=_FALLBACK_HEAD_LINES + 1):
        if len(entries) >= _FALLBACK_MAX_LINES:
            break
        if _FALLBACK_DEFINITION.match(line):
            entries.append((number, line.rstrip()[:_MAX_SIGNATURE_CHARS]))
    if not entries:
        return ELISION
    return _join(entries, len(lines))


_DOCUMENT_SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".rst": "rst"}
_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+\S")
_MD_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_RST_ADORNMENT = re.compile(r"^([=\-`:'\"~^_*+#<>.])\1{2,}\s*$")


def document_outline(text: str, kind: str) -> str:
    """The headings of a Markdown or reStructuredText document, with line numbers and `⋮` between.

    >>> print(document_outline("Title\\n=====\\n\\nText.\\n\\nPart\\n----\\n", "rst"))
    1│Title
    ⋮
    6│  Part
    ⋮
    >>> print(document_outline("# Guide\\n```\\n# not a heading\\n```\\n## Install\\n", "markdown"))
    1│# Guide
    ⋮
    5│## Install
    """
    lines = text.splitlines()
    entries: list[tuple[int, str]] = []
    if kind == "markdown":
        fence: str | None = None
        for number, line in enumerate(lines, start=1):
            opened = _MD_FENCE.match(line)
            if opened:
                marker = opened.group(1)[0]
                fence = None if fence == marker else (fence or marker)
                continue
            if fence is None and _MD_HEADING.match(line):
                entries.append((number, line.strip()[:_MAX_SIGNATURE_CHARS]))
    else:
        # an RST title is a line underlined (and maybe overlined) by one punctuation character; the
        # order in which adornment styles first appear gives the levels
        levels: list[tuple[str, bool]] = []
        for index in range(1, len(lines)):
            under = _RST_ADORNMENT.match(lines[index])
            title = lines[index - 1].rstrip()
            if not under or not title.strip() or _RST_ADORNMENT.match(title) or title[:1].isspace():
                continue
            if len(lines[index].rstrip()) < len(title.strip()):
                continue
            over = index >= 2 and lines[index - 2].rstrip() == lines[index].rstrip()
            style = (under.group(1), over)
            if style not in levels:
                levels.append(style)
            depth = levels.index(style)
            entries.append((index, "  " * depth + title.strip()[:_MAX_SIGNATURE_CHARS]))
    if not entries:
        return fallback_outline(text)
    return _join(entries, len(lines))


_ENTRY = re.compile(r"^(\d+)│(.*)$")
_LEFT_OUT = re.compile(r"^⋮ \((\d+) more definitions not shown\)$")
_DOC_QUOTES = ('"', "'", 'r"', "r'", 'u"', "u'")


def fit_outline(
    text: str, max_tokens: int, count_lines: Callable[[list[str]], list[int]], names: Iterable[str] = ()
) -> str:
    """An outline cut to about `max_tokens`, keeping what matters most, in line order.

    Lines naming one of `names` (the identifiers a task mentions) come first, then top-level
    definitions, then the rest; whatever does not fit is elided with `⋮` and a closing note says how
    many definitions were left out.

        >>> fit_outline("1│def a():\\n⋮\\n9│def b():", 100, lambda ls: [len(l) for l in ls])
        '1│def a():\\n⋮\\n9│def b():'
    """
    if count_lines([text])[0] <= max_tokens:
        return text
    lines = text.split("\n")
    # an outline fitted before (a brief one is cut from the fitted outline) keeps its count of the left out
    earlier = _LEFT_OUT.match(lines[-1])
    if earlier:
        lines.pop()
    entries = [(n, m) for n, line in enumerate(lines) if (m := _ENTRY.match(line))]
    if not entries:
        return text
    costs = count_lines([line + "\n" for line in lines])
    wanted = [name for name in names if len(name) >= 3]
    # a docstring head belongs to the definition above it: both are kept or neither
    groups: list[tuple[str, list[int]]] = []
    for index, match in entries:
        if groups and match.group(2).lstrip().startswith(_DOC_QUOTES):
            groups[-1][1].append(index)
        else:
            groups.append((match.group(2), [index]))

    def priority(group: tuple[str, list[int]]) -> int:
        head = group[0]
        if any(name in head for name in wanted):
            return 0
        return 1 if not head[:1].isspace() else 2

    kept: set[int] = set()
    kept_groups = 0
    used = 0
    for group in sorted(groups, key=lambda g: (priority(g), g[1][0])):
        cost = sum(costs[index] + 1 for index in group[1])  # each with its share of elision marks
        if used + cost + 1 > max_tokens:
            continue
        kept.update(group[1])
        kept_groups += 1
        used += cost
    out: list[str] = []
    for index, line in enumerate(lines):
        if index in kept:
            out.append(line)
        elif not out or out[-1] != ELISION:
            out.append(ELISION)
    left_out = len(groups) - kept_groups + (int(earlier.group(1)) if earlier else 0)
    if left_out:
        if out and out[-1] == ELISION:
            out.pop()
        out.append(f"{ELISION} ({left_out} more definitions not shown)")
    return "\n".join(out)
