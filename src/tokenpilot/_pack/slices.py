"""The `slices` tier: a file's header and the whole source of the definitions the task is about.

A slice shows, in line order and with the outline's `123│` gutter:

- the file's header: the module docstring's first line (the imports are in the outline's brief line);
- the full source of the chosen definitions (decorators to last line), each under the line(s) of the
  class that encloses it;
- the file's outline (`outline.fit_outline`) for every line not already shown;

and `⋮` wherever lines are elided. Which definitions, best first (`order_definitions`): those the
task names (`Class.method`, `method`, a traceback frame's function), those containing a message the
task quotes or a line it points at (`mod.py:123`, a forge link's `#L123`), and those whose text
best matches the task (BM25 with idf among the definitions of the files sliced); then the direct
callees and callers of the best one. Namesakes that are one object (`@overload` stubs and their
implementation, a property and its setter; not a dispatcher's registrations) take one place, the
best one's, and are shown together. Offering the
best 1, 2, 3, 5, 8 and 13 as separate sizes lets the knapsack (`select`) choose how much of a file
to show. A class of CLASS_WHOLE_MAX_LINES or more is not ranked itself (its methods are); one more
size shows the long class whose methods weigh most whole (`examine.slice_options`), the only way a
slice shows lines of its body between the methods.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from tokenpilot._pack.outline import ELISION, GRAMMARS, language_of, parser_for

SIZES = (1, 2, 3, 5, 8, 13)
W_NAMED = 1.0  # the task names the definition
W_QUOTED = 1.0  # it contains a message the task quotes
W_FRAME = 0.8  # a traceback frame of the task is in it
W_RELATED = 0.25  # it calls, or is called by, one of the RELATED_OF best definitions
RELATED_OF = 2
W_CONSTRUCTOR = 0.3  # the `__init__` of a class the task names
W_LINE = 0.8  # a line the task points at (`file.py:123`, a forge link's `#L123`) is in it
CLASS_WHOLE_MAX_LINES = 150  # a shorter class is shown whole when chosen
_K1 = 1.2
_B = 0.75
_MIN_MESSAGE = 12
_MESSAGE_WINDOW = 4  # words of a quoted message that must appear together

_QUOTED = re.compile(r"\"([^\"\n]{12,200})\"|'([^'\n]{12,200})'")  # 12: _MIN_MESSAGE
_EXCEPTION_LINE = re.compile(r"^\s*(?:[\w.]+\.)?[A-Z]\w*(?:Error|Exception|Warning)\b:\s*(.{8,300})$", re.M)
_SOURCE_PREFIX = re.compile(r"^\s*(?:-+>|>>>|\.\.\.)?\s*\d*\s")
_CODE_CHARS = re.compile(r"[=(\[.]\S")
_MIN_CODE_LINE = 25
_IMPORT = re.compile(r"(?:from\s+\S+\s+)?import\s")
_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\w+)')
# `pkg/mod.py:123`, `mod.py line 123`, a forge link `…/pkg/mod.py#L123`
_LINE_MENTION = re.compile(r"([\w./-]+\.py)(?::|#L|,? line )(\d+)")
_MESSAGE_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_']+")


@dataclass(frozen=True, slots=True)
class Definition:
    """A function, method or class: its name, qualified name and lines (1-based, inclusive)."""

    name: str
    qualname: str
    start: int  # first line, decorators included
    header_end: int  # last line of the signature
    end: int
    parent: int | None  # index of the enclosing definition
    unit: bool  # ranked on its own (not nested inside a function)


@dataclass(frozen=True, slots=True)
class Slice:
    """A definition shown whole in a `slices` block (the manifest's `{"name", "start", "end"}`)."""

    name: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class TaskClues:
    """What a task says about definitions: names, quoted messages, traceback frames."""

    names: frozenset[str]
    qualnames: frozenset[str]
    messages: tuple[str, ...]
    frames: tuple[tuple[str, int, str], ...]  # (path as written, line, function)
    lines: tuple[tuple[str, int], ...] = ()  # (path as written, line) the task points at


def task_clues(task: str, identifiers: Sequence[str], dotted: Sequence[str]) -> TaskClues:
    """The definition names, quoted messages and traceback frames of a task.

    >>> clues = task_clues('raises "cannot parse the given input"', ["parse_expr"], ["Parser.run"])
    >>> sorted(clues.qualnames), clues.messages
    (['Parser.run'], ('cannot parse the given input',))
    """
    messages: list[str] = []
    for match in _QUOTED.finditer(task):
        text = match.group(1) or match.group(2)
        if " " in text.strip():
            messages.append(text.strip())
    messages.extend(m.group(1).strip() for m in _EXCEPTION_LINE.finditer(task))
    # source lines a traceback or a paste shows (`-> 1812     keep_attrs = ...`) are in the code
    for line in task.splitlines():
        code = _SOURCE_PREFIX.sub("", line).strip()
        if len(code) >= _MIN_CODE_LINE and _CODE_CHARS.search(code) and not _IMPORT.match(code):
            messages.append(code)
    frames = tuple((m.group(1), int(m.group(2)), m.group(3)) for m in _FRAME.finditer(task))
    qualnames = frozenset(d for d in dotted if d.count(".") >= 1)
    # `xr.where`, `np.testing.assert_allclose`: the last part names a definition, common word or not
    tails = {d.rsplit(".", 1)[-1] for d in dotted}
    names = frozenset(identifiers) | tails | {f for _, _, f in frames if f != "<module>"}
    lines = tuple(dict.fromkeys((m.group(1), int(m.group(2))) for m in _LINE_MENTION.finditer(task)))
    return TaskClues(names, qualnames, tuple(dict.fromkeys(messages)), frames, lines)


def definitions(path: str, text: str) -> tuple[Definition, ...]:
    """The definitions of a file, in line order (tree-sitter; none for files without a grammar).

    >>> defs = definitions("m.py", "class A:\\n    def f(self):\\n        pass\\n")
    >>> [(d.qualname, d.start, d.end) for d in defs]
    [('A', 1, 3), ('A.f', 2, 3)]
    """
    language = language_of(path)
    parser = parser_for(language) if language else None
    if parser is None or language is None:
        return ()
    grammar = GRAMMARS[language]
    source = text.encode("utf-8", "surrogatepass")
    tree = parser.parse(source)
    out: list[Definition] = []

    def walk(
        node: object, parent: int | None, prefix: str, in_function: bool, start_override: int | None
    ) -> None:
        for child in node.named_children:  # type: ignore[attr-defined]
            kind = child.type
            if kind in grammar.definitions:
                name_node = child.child_by_field_name("name")
                name = (
                    source[name_node.start_byte : name_node.end_byte].decode("utf-8", "replace")
                    if name_node is not None
                    else kind
                )
                body = child.child_by_field_name("body")
                start = (start_override if start_override is not None else child.start_point[0]) + 1
                header_end = (body.start_point[0] if body is not None else child.end_point[0]) + 1
                if body is not None and body.start_point[0] > child.start_point[0]:
                    header_end = body.start_point[0]  # the body starts on a line of its own
                end = child.end_point[0] + 1
                index = len(out)
                is_function = "class" not in kind and "struct" not in kind and "impl" not in kind
                # a long class is not shown whole: its methods are the units, its header their context
                unit = not in_function and (is_function or end - start < CLASS_WHOLE_MAX_LINES)
                out.append(Definition(name, prefix + name, start, max(start, header_end), end, parent, unit))
                if body is not None:
                    walk(body, index, prefix + name + ".", in_function or is_function, None)
            elif kind in grammar.containers:
                decorated = kind == "decorated_definition"
                walk(child, parent, prefix, in_function, child.start_point[0] if decorated else None)

    walk(tree.root_node, None, "", False, None)
    return tuple(out)


def own_texts(lines: Sequence[str], defs: Sequence[Definition]) -> dict[int, str]:
    """The text each ranked definition is matched on: a function whole, a class without its methods."""
    own: dict[int, str] = {}
    # a definition with no ranked definition nested in it is matched on all its lines: one slice
    holding_units = {c.parent for c in defs if c.unit and c.parent is not None}
    for i, d in enumerate(defs):
        if d.unit:
            if i in holding_units:
                own[i] = "\n".join(lines[n - 1] for n in _own_lines(defs, i, len(lines)))
            else:
                own[i] = "\n".join(lines[d.start - 1 : min(d.end, len(lines))])
    return own


def _own_lines(defs: Sequence[Definition], index: int, total: int) -> list[int]:
    """Line numbers of a definition that are not in a ranked definition nested in it."""
    d = defs[index]
    inside = bytearray(d.end - d.start + 1)
    for c in defs:
        if c.parent == index and c.unit:
            inside[c.start - d.start : c.end - d.start + 1] = b"\x01" * (c.end - c.start + 1)
    return [d.start + k for k, flag in enumerate(inside) if not flag and d.start + k <= total]


def order_definitions(
    path: str,
    defs: Sequence[Definition],
    own: Mapping[int, str],
    terms: Mapping[int, Mapping[str, int]],
    query: Mapping[str, float],
    clues: TaskClues,
    idf: Mapping[str, float],
    average_length: float,
    joined: Collection[str] = (),
) -> list[tuple[int, float]]:
    """(definition index, weight) of the definitions worth showing, best first; weight > 0.

    `joined`: qualified names whose namesakes are one object (`joined_namesakes`): they take one place.
    """
    units = [i for i in own if i in terms]
    if not units:
        return []
    scores: dict[int, float] = {}
    for i in units:
        scores[i] = bm25(terms[i], query, idf, average_length)
    top = max(scores.values(), default=0.0) or 1.0
    tail = path.rsplit("/", 1)[-1]
    quoted = _messages_in("\n".join(own[i] for i in units), clues.messages) if clues.messages else {}
    for i in units:
        d = defs[i]
        value = scores[i] / top
        if d.qualname in clues.qualnames or (d.name in clues.names and len(d.name) >= 3):
            value += W_NAMED
        elif d.name == "__init__" and d.parent is not None and defs[d.parent].name in clues.names:
            value += W_CONSTRUCTOR
        if quoted and any(_contains_message(own[i], m, quoted[m]) for m in quoted):
            value += W_QUOTED
        for frame_path, line, function in clues.frames:
            if frame_path.endswith(tail) and d.start <= line <= d.end and function == d.name:
                value += W_FRAME
        if W_LINE and any(
            (path.endswith("/" + mention) or mention.endswith("/" + path) or path == mention)
            and d.start <= line <= d.end
            for mention, line in clues.lines
        ):
            value += W_LINE
        scores[i] = value
    leaders = sorted(units, key=lambda i: (-scores[i], i))[:RELATED_OF]
    bonus: dict[int, float] = {}
    for best in leaders:
        if scores[best] <= 0:
            continue
        callees = _called(own[best])
        for i in units:
            if i in leaders or len(defs[i].name) < 3:
                continue
            if defs[i].name in callees or (defs[best].name in own[i] and _calls(own[i], defs[best].name)):
                bonus[i] = max(bonus.get(i, 0.0), W_RELATED * scores[best])
    for i, extra in bonus.items():
        scores[i] += extra
    ranked = sorted((i for i in units if scores[i] > 0), key=lambda i: (-scores[i], i))
    # namesakes that are one object (overloads, a property's setter) are shown together: one place
    seen: set[str] = set()
    out: list[tuple[int, float]] = []
    for i in ranked:
        if defs[i].qualname not in joined:
            out.append((i, scores[i]))
        elif defs[i].qualname not in seen:
            seen.add(defs[i].qualname)
            out.append((i, scores[i]))
    return out


_DEF_LINE = re.compile(r"^\s*(?:async\s+def|def|class)\s")
# decorators that make one object of several definitions of a name
_ONE_OBJECT = re.compile(r"\boverload\b|\.(?:setter|getter|deleter)\b|\bproperty\b")


def joined_namesakes(defs: Sequence[Definition], lines: Sequence[str]) -> frozenset[str]:
    """Qualified names defined more than once whose definitions are one object, read together.

    `@overload` stubs and their implementation, a property and its setter, a name defined again
    (no decorator on any): one is not read without the others. Registrations of a dispatcher
    (`@dispatch(A, B) def f`, `@f.register def _`) are not: each is an implementation of its own.

    >>> text = "@dispatch(int)\\ndef f(x):\\n    pass\\n@dispatch(str)\\ndef f(x):\\n    pass\\n"
    >>> text += "def g():\\n    pass\\ndef g():\\n    return 1\\n"
    >>> sorted(joined_namesakes(definitions("m.py", text), text.split("\\n")))
    ['g']
    """
    # each ranked definition's decorator lines (those before its `def` / `class` line), by name
    heads_of: dict[str, list[str]] = {}
    for d in defs:
        if d.unit:
            head = []
            for line in lines[d.start - 1 : d.header_end]:
                if _DEF_LINE.match(line):
                    break
                head.append(line)
            heads_of.setdefault(d.qualname, []).append("\n".join(head))
    return frozenset(
        name
        for name, heads in heads_of.items()
        if len(heads) > 1 and (not any(h.strip() for h in heads) or any(_ONE_OBJECT.search(h) for h in heads))
    )


def with_namesakes(defs: Sequence[Definition], chosen: Sequence[int], joined: Collection[str]) -> list[int]:
    """The chosen definitions and every other ranked definition of a `joined` name they have.

    >>> stubs = "@overload\\ndef f(x: int) -> int: ...\\n@overload\\ndef f(x: str) -> str: ...\\n"
    >>> text = stubs + "def f(x):\\n    return x\\n"
    >>> defs = definitions("m.py", text)
    >>> joined = joined_namesakes(defs, text.split("\\n"))
    >>> [(defs[i].start, defs[i].end) for i in with_namesakes(defs, [2], joined)]
    [(5, 6), (1, 2), (3, 4)]
    """
    names = {defs[i].qualname for i in chosen} & set(joined)
    extra = [i for i, d in enumerate(defs) if d.unit and d.qualname in names and i not in chosen]
    return [*chosen, *extra]


def bm25(
    terms: Mapping[str, int], query: Mapping[str, float], idf: Mapping[str, float], average: float
) -> float:
    """Lucene BM25 of a weighted query against one definition's terms."""
    length = sum(terms.values())
    norm = _K1 * (1 - _B + _B * length / (average or 1.0))
    total = 0.0
    for term, weight in query.items():
        tf = terms.get(term)
        if tf:
            total += weight * idf.get(term, 0.0) * tf / (tf + norm)
    return total


def corpus_statistics(
    tables: Sequence[Mapping[str, int]], query: Mapping[str, float]
) -> tuple[dict[str, float], float]:
    """idf of each query term among these definitions, and their average length."""
    n = len(tables)
    df = {term: sum(1 for t in tables if term in t) for term in query}
    idf = {term: math.log(1 + (n - k + 0.5) / (k + 0.5)) for term, k in df.items()}
    average = sum(sum(t.values()) for t in tables) / n if n else 1.0
    return idf, average


def _message_windows(message: str) -> list[str]:
    """The runs of _MESSAGE_WINDOW literal words of a message (a formatted one is found by them)."""
    words = _MESSAGE_WORD.findall(message)
    if len(words) < _MESSAGE_WINDOW:
        return []
    windows = (" ".join(words[k : k + _MESSAGE_WINDOW]) for k in range(len(words) - _MESSAGE_WINDOW + 1))
    return [w for w in windows if len(w) >= _MIN_MESSAGE]


def _messages_in(text: str, messages: Sequence[str]) -> dict[str, tuple[bool, list[str]]]:
    """Per message found in `text`: whether it is there whole, and which of its windows are there.

    Neither a message nor a window holds a newline, so one found in a line of a definition is found
    in the text of all of a file's definitions joined by newlines: what is not there is in none.
    """
    found: dict[str, tuple[bool, list[str]]] = {}
    for message in messages:
        whole = message in text
        windows = [w for w in _message_windows(message) if w in text]
        if whole or windows:
            found[message] = (whole, windows)
    return found


def _contains_message(text: str, message: str, where: tuple[bool, list[str]] | None = None) -> bool:
    """Whether `text` holds the message, or a run of its literal words (`where`: `_messages_in`'s)."""
    whole, windows = where if where is not None else (True, _message_windows(message))
    if whole and message in text:
        return True
    return any(window in text for window in windows)


_CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")


def _called(text: str) -> set[str]:
    """The names called in a text (`name(`)."""
    return set(_CALL.findall(text))


_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


def _calls(text: str, name: str) -> bool:
    """Whether `name` is in `_called(text)`, by one search for it (not every call of the text).

    `_CALL` matches whole words (a boundary before, `(` after), so a call of `name` is a match of
    the same pattern with the name in place of the word.
    """
    if not _IDENTIFIER.fullmatch(name):
        return name in _called(text)
    return re.search(r"\b" + re.escape(name) + r"\s*\(", text) is not None


def chosen_lines(lines: Sequence[str], defs: Sequence[Definition], chosen: Sequence[int]) -> dict[int, None]:
    """Line numbers shown whole: each chosen definition and its enclosing classes' headers.

    Only classes shorter than CLASS_WHOLE_MAX_LINES are chosen (whole); of a longer one, its methods.
    """
    shown: dict[int, None] = {}
    for i in chosen:
        d = defs[i]
        shown.update(dict.fromkeys(range(d.start, d.end + 1)))
        parent = d.parent
        while parent is not None:
            p = defs[parent]
            shown.update(dict.fromkeys(range(p.start, p.header_end + 1)))
            parent = p.parent
    return shown


_ENTRY = re.compile(r"^(\d+)│")


def render_slices(
    lines: Sequence[str], defs: Sequence[Definition], chosen: Sequence[int], outline: str
) -> str:
    """The body of a `slices` block: header, chosen definitions whole, outline of the rest, `⋮` between.

    >>> text = "'''Tools.'''\\nimport os\\n\\ndef a():\\n    return 1\\n\\ndef b():\\n    return 2\\n"
    >>> defs = definitions("m.py", text)
    >>> outline = "2│imports: os\\n⋮\\n4│def a():\\n⋮\\n7│def b():\\n⋮"
    >>> print(render_slices(text.splitlines(), defs, [1], outline))
    1│'''Tools.'''
    2│imports: os
    ⋮
    4│def a():
    ⋮
    7│def b():
    8│    return 2
    """
    shown = chosen_lines(lines, defs, chosen)
    entries: dict[int, str] = {n: lines[n - 1] for n in shown if 0 < n <= len(lines)}
    for number, text in _docstring_head(lines):
        entries.setdefault(number, text)
    for line in outline.split("\n"):
        match = _ENTRY.match(line)
        if match:
            number = int(match.group(1))
            if number not in entries:
                entries[number] = line[match.end() :]
    out: list[str] = []
    previous = 0
    for number in sorted(entries):
        if number > previous + 1:
            out.append(ELISION)
        out.append(f"{number}│{entries[number]}")
        previous = number
    if previous < len(lines):
        out.append(ELISION)
    return "\n".join(out)


def _docstring_head(lines: Sequence[str]) -> list[tuple[int, str]]:
    """The module docstring's first line (number, text), and the next when the first is only quotes."""
    for number, line in enumerate(lines[:5], start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not stripped.lstrip("rRuU").startswith(('"""', "'''", '"', "'")):
            return []
        head = [(number, line)]
        if stripped.lstrip("rRuU") in ('"""', "'''") and number < len(lines):
            head.append((number + 1, lines[number]))
        return head
    return []
