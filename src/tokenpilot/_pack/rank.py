"""Stage 4: how relevant each file is to the task.

    score = (  W_BM25    * bm25 / max bm25            lexical match, code-aware terms
             + W_NAMES_FIELD * names / max names      the same query against the names the file
                                                       defines (their terms), a field of its own
             + W_PATH    * share of [task names this file's path]
                                                       (1/n when the mention names n files: `index.rst`)
             + W_MODULE  * [task names this file's module, longest match]
             + W_DEFINES * min(1, Σ 1/n(x))           x: identifiers the task names that this file
                                                       defines (n(x): files defining x)
             + W_STEM    * [file stem is a name the task mentions]
             + W_HOP * s(t)/s(1) * s(f)/s(1)           one hop: f is imported by t, one of the HOP_TOP
                                                       best (s: the sum so far, s(1) the best's)
             + W_CALL_HOP * s(t)/s(1) * (1 - s(f)/s(1))
                                                       f is used, by a name t imports, in t's best
                                                       part (`call_hop`)
             + W_GRAPH   * pagerank / max pagerank )  definition/reference graph, personalised on
                                                       the files the signals above point at
            × (META_FACTOR | TEST_FACTOR | DOCS_FACTOR | 1)
                                                       issue/PR templates and CI settings (bug reports
                                                       are written from the templates); tests; docs,
                                                       examples and files that are not source code
                                                       (translations, changelogs, data); unless the
                                                       task names the file (a mention naming at most
                                                       2 files: NAMED_MIN_SHARE)
            × FOCUS_FACTOR if a --focus glob matches
          + INCLUDE_BONUS if an --include glob matches (must-include files come first)

    then the RERANK_TOP best files gain W_PARTS × best part / best part of them (`rerank_by_parts`):
    a part is the text between two definition starts, scored with BM25 among the parts of those files.

BM25 is Lucene's BM25 as the bm25s library scores it (k1 = 1.2, b = 0.75,
idf = ln(1 + (N - df + 0.5)/(df + 0.5)), path terms counted PATH_TERM_WEIGHT times; see `lexical`),
each query term weighted 1 + ln(its count in the task), × TITLE_BOOST when the task's first line has
it, × CODE_ONLY_TERM when only its code blocks and pastes do (`weigh_by_field`: an example uses the
public API, the title says what is wrong); a name only code shows counts CODE_ONLY_NAME in W_DEFINES.
Definitions come from a fast per-language regular expression over every file (tree-sitter parsing
all of a large repository would take seconds, see docs/pack.md). The names field is a second saved
BM25 index (`lexical`, field "names"); imports for the hop are read by a regular expression from the
few best files only.
The weights were tuned on the SWE-bench dev split only (bench/localize.py), never per instance.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from tokenpilot._pack.features import FileFeatures, file_parts, name_terms, part_texts
from tokenpilot._pack.lexical import LexicalIndex, best_part_scores, part_scores
from tokenpilot._pack.paths import is_code_path, is_docs_path, is_meta_path, is_test_path
from tokenpilot._pack.terms import Mentions, read_task, text_terms, without_urls

NAMED_TERM_BOOST = 2.0
W_BM25 = 1.5
W_PATH = 0.5
W_MODULE = 1.0
W_DEFINES = 0.8
W_STEM = 0.3
W_GRAPH = 0.3
TEST_FACTOR = 0.3
DOCS_FACTOR = 0.4
META_FACTOR = 0.1
FOCUS_FACTOR = 3.0
INCLUDE_BONUS = 100.0
RERANK_TOP = 10
W_EVIDENCE = 1.2  # the file contains a message or source line the task quotes
EVIDENCE_TOP = 200
EVIDENCE_MAX_FILES = 2
W_PARTS = 1.0
W_HOP = 0.3  # imported by one of the best HOP_TOP files
HOP_TOP = 10
W_CALL_HOP = 0.3  # used by the best part of one of the HOP_TOP best files, by a name it imports
TITLE_BOOST = 2.0  # query terms of the task's first line
CODE_ONLY_TERM = 0.5  # query terms seen only in the task's code blocks and pastes
CODE_ONLY_NAME = 0.5  # names (for W_DEFINES) seen only in code blocks and pastes
NAMED_MIN_SHARE = 0.5  # a file named by a mention of at most 2 files counts as named by the task
W_NAMES_FIELD = 0.5  # BM25 of the query against the names a file defines (their parts)
_GRAPH_MAX_DEFINERS = 4  # a name defined in more files than this says little about who uses whom
_GRAPH_SEEDS = 20
GRAPH_HOPS = 1

TermsLoader = Callable[[Sequence[int]], Sequence[Mapping[str, int]]]
PartsLoader = Callable[[Sequence[int]], Sequence[Sequence[Mapping[str, int]]]]


@dataclass(frozen=True, slots=True)
class FileScore:
    """A file's relevance and the parts it is made of (for the manifest and for tuning)."""

    path: str
    score: float
    bm25: float
    named: bool  # the task names this file (path or module)


def query_terms(task: str, mentioned: Sequence[str] = ()) -> dict[str, float]:
    """BM25 query: each term of the task weighted 1 + ln(count), × NAMED_TERM_BOOST for code names.

    `task` is the task as `terms.read_task` leaves it (HTML comments and environment reports out);
    links are left out here: their hosts and routes (`github`, `blob`, `html`) match the wrong files.
    """
    named = {name.lower() for name in mentioned}
    return {
        term: (1.0 + math.log(count)) * (NAMED_TERM_BOOST if term in named else 1.0)
        for term, count in text_terms(without_urls(task)).items()
    }


def bm25_scores(
    query: Mapping[str, float],
    features: Sequence[FileFeatures],
    paths: Sequence[str],
    index: LexicalIndex | None = None,
) -> list[float]:
    """BM25 (bm25s, see `lexical`) of the weighted query against every file."""
    if not features or not query:
        return [0.0] * len(features)
    if index is None:
        index = LexicalIndex.build(paths, features)
    return index.scores(query)


def module_names(path: str) -> tuple[str, ...]:
    """Dotted module names a file could be imported as (with and without a src/lib prefix).

    >>> module_names("src/pkg/mod/__init__.py")
    ('src.pkg.mod', 'pkg.mod')
    """
    stem, dot, suffix = path.rpartition(".")
    # plain string work: this runs for every file of the tree on every pack
    if not dot or suffix not in ("py", "pyi", "pyx") or "/" in suffix:
        return ()
    parts = [p for p in stem.split("/") if p]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    names = [".".join(parts)] if parts else []
    if len(parts) > 1 and parts[0] in ("src", "lib", "python"):
        names.append(".".join(parts[1:]))
    return tuple(names)


def _named_paths(paths: Sequence[str], mentions: Mentions) -> dict[int, float]:
    """Files the task names, each with its share: 1 / how many files the mention names.

    A mention longer than any repository path (an absolute path in a traceback, a link to the
    file on a forge) names the longest repository path it ends with; a shorter mention (`mod.py`,
    `pkg/mod.py`) names every file whose path ends with it, so `index.rst` in a docs report names
    each of a project's dozens of `index.rst` a little, not any of them as the file.

    >>> from tokenpilot._pack.terms import task_mentions
    >>> _named_paths(["a/conf.py", "b/conf.py", "pkg/mod.py"], task_mentions("see pkg/mod.py and conf.py"))
    {2: 1.0, 0: 0.5, 1: 0.5}
    """
    by_path = {path: index for index, path in enumerate(paths)}
    hits: dict[int, float] = {}
    for mention in mentions.paths:
        found = by_path.get(mention)
        if found is None:
            parts = mention.split("/")
            longer = next(
                (
                    by_path["/".join(parts[k:])]
                    for k in range(1, len(parts))
                    if "/".join(parts[k:]) in by_path
                ),
                None,
            )
            if longer is not None and "/" in paths[longer]:
                found = longer
        if found is not None:
            hits[found] = 1.0
            continue
        suffix = "/" + mention
        matched = [index for index, path in enumerate(paths) if path.endswith(suffix)]
        share = 1.0 / max(1, len(matched))
        for index in matched:
            hits[index] = max(hits.get(index, 0.0), share)
    return hits


def _named_modules(paths: Sequence[str], mentions: Mentions) -> set[int]:
    by_module: dict[str, int] = {}
    for index, path in enumerate(paths):
        for name in module_names(path):
            by_module.setdefault(name, index)
    hits: set[int] = set()
    for dotted in mentions.dotted:
        parts = dotted.split(".")
        # the longest prefix that is a module: `a.b.c.func` → a/b/c.py when it exists
        for end in range(len(parts), 1, -1):
            found = by_module.get(".".join(parts[:end]))
            if found is not None:
                hits.add(found)
                break
    return hits


def rank(
    paths: Sequence[str],
    features: Sequence[FileFeatures],
    task: str | Mapping[str, float],
    mentions: Mentions,
    *,
    focus: Sequence[str] = (),
    include: Sequence[str] = (),
    bm25_index: LexicalIndex | None = None,
    names_index: LexicalIndex | None = None,
    terms_of: TermsLoader | None = None,
    parts_of: PartsLoader | None = None,
    messages: Sequence[str] = (),
    text_of: Callable[[int], str] | None = None,
    task_text: str | None = None,
) -> list[FileScore]:
    """Score every file for the task (same order as `paths`).

    `messages`: text the task quotes (error messages, pasted source lines; `slices.task_clues`);
    with `text_of(i)` (file i's text), the EVIDENCE_TOP best files gain W_EVIDENCE when one of
    them occurs in their text.

    `bm25_index`: a prebuilt BM25 index of these files; with it, `features[i].terms` may be left
    empty and `terms_of` gives the terms of the few files the graph stage reads. `parts_of(indices)`: file
    i's parts (`file_parts`), for the second stage (`rerank_by_parts`); without it there is none.
    """
    from tokenpilot._pack.discover import matching_glob

    # the weighted query (`query_terms` of the task read once), or the task itself
    query = query_terms(read_task(task).text, mentions.identifiers) if isinstance(task, str) else task
    if task_text is None and isinstance(task, str):
        task_text = read_task(task).text
    prose_terms: set[str] = set()
    if task_text is not None:
        query, prose_terms = weigh_by_field(query, task_text)
    bm25 = bm25_scores(query, features, paths, bm25_index)
    top = max(bm25, default=0.0) or 1.0
    path_hits = _named_paths(paths, mentions)
    module_hits = _named_modules(paths, mentions)
    definers: dict[str, list[int]] = {}
    mentioned = set(mentions.identifiers)
    for index, f in enumerate(features):
        for name in f.definitions:
            if name in mentioned:
                definers.setdefault(name, []).append(index)
    defines = [0.0] * len(paths)
    for name, indices in definers.items():
        weight = CODE_ONLY_NAME if prose_terms and name.lower() not in prose_terms else 1.0
        for index in indices:
            defines[index] += weight / len(indices)
    mentioned_lower = {m.lower() for m in mentioned}
    if names_index is None and W_NAMES_FIELD:
        names_index = LexicalIndex.build(
            paths, [FileFeatures(name_terms(f.definitions), 0, ()) for f in features], path_weight=0
        )
    names_field = names_index.scores(query) if names_index is not None else [0.0] * len(paths)
    top_names = max(names_field, default=0.0) or 1.0
    base: list[float] = []
    for index, path in enumerate(paths):
        stem = PurePosixPath(path).stem.lower()
        value = (
            W_BM25 * bm25[index] / top
            + W_PATH * path_hits.get(index, 0.0)
            + W_MODULE * (index in module_hits)
            + W_DEFINES * min(1.0, defines[index])
            + W_STEM * (stem in mentioned_lower and len(stem) >= 3)
            + W_NAMES_FIELD * names_field[index] / top_names
        )
        base.append(value)
    if messages and text_of is not None:
        candidates = sorted(range(len(paths)), key=lambda i: -base[i])[:EVIDENCE_TOP]
        holders = {m: [i for i in candidates if m in text_of(i)] for m in messages}
        # a line many files share (an import, a common call) is no evidence of where the bug is
        telling = {i for found in holders.values() if 0 < len(found) <= EVIDENCE_MAX_FILES for i in found}
        for index in telling:
            base[index] += W_EVIDENCE
    if parts_of is not None:
        parts_of = _remembered(parts_of)  # the call hop and the second stage read mostly the same files
    if (W_HOP or W_CALL_HOP) and text_of is not None:
        by_module = modules_by_name(paths)
        known: dict[int, dict[str, int]] = {}

        def imports_of(i: int) -> dict[str, int]:  # both hops read the same few files' imports once
            if i not in known:
                known[i] = imported_names(paths[i], text_of(i), by_module)
            return known[i]

        hop = one_hop(paths, base, text_of, by_module, imports_of) if W_HOP else {}
        if W_CALL_HOP:
            loader = parts_of or (lambda indices: [file_parts(text_of(i)) for i in indices])
            for index, value in call_hop(paths, base, text_of, query, loader, by_module, imports_of).items():
                hop[index] = hop.get(index, 0.0) + value
        for index, value in hop.items():
            base[index] += value
    graph = personalised_pagerank(features, base, terms_of=terms_of)
    top_graph = max(graph, default=0.0) or 1.0
    scores: list[FileScore] = []
    for index, path in enumerate(paths):
        # a mention that names many files (`conf.py`, `index.rst`) does not lift them out of tests/docs
        named = (index in path_hits and path_hits[index] >= NAMED_MIN_SHARE) or index in module_hits
        value = base[index] + W_GRAPH * graph[index] / top_graph
        if not named:
            if is_meta_path(path):
                value *= META_FACTOR
            elif is_test_path(path):
                value *= TEST_FACTOR
            elif is_docs_path(path) or not is_code_path(path):
                value *= DOCS_FACTOR
        if focus and matching_glob(path, focus):
            value *= FOCUS_FACTOR
        if include and matching_glob(path, include):
            value += INCLUDE_BONUS
        scores.append(FileScore(path, value, bm25[index], named))
    if parts_of is not None:
        scores = rerank_by_parts(scores, query, parts_of)
    return scores


def _remembered(parts_of: PartsLoader) -> PartsLoader:
    """`parts_of` reading each file's parts once (they are decoded from the cache on every call)."""
    known: dict[int, Sequence[Mapping[str, int]]] = {}

    def load(indices: Sequence[int]) -> Sequence[Sequence[Mapping[str, int]]]:
        missing = [i for i in indices if i not in known]
        if missing:
            known.update(zip(missing, parts_of(missing), strict=True))
        return [known[i] for i in indices]

    return load


_FENCE = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1[ \t]*$", re.M | re.S)
_PASTE_LINE = re.compile(r"^[ \t]*(?:>>>|\.\.\.|In \[\d+\]|Out\[\d+\]|\$ |    ).*$", re.M)


def title_and_prose(task: str) -> tuple[str, str]:
    """The task's first line, and its text without code blocks and pasted sessions."""
    stripped = task.strip()
    title = stripped.split("\n", 1)[0]
    prose = _PASTE_LINE.sub("", _FENCE.sub("", stripped))
    return title, prose


def weigh_by_field(query: Mapping[str, float], task_text: str) -> tuple[dict[str, float], set[str]]:
    """The query with its title's terms × TITLE_BOOST and terms only code shows × CODE_ONLY_TERM.

    A report's title says what is wrong; its example code uses the public API (the entry points,
    not where the bug is). Also returns the terms of the prose (title included).

    >>> task = "parse drops words\\n```\\nfrom pkg import Widget\\nWidget().parse(x)\\n```"
    >>> weighed, _ = weigh_by_field({"parse": 1.0, "widget": 1.0}, task)
    >>> weighed == {"parse": TITLE_BOOST, "widget": CODE_ONLY_TERM}
    True
    """
    title, prose = title_and_prose(task_text)
    title_terms = set(text_terms(without_urls(title)))
    prose_terms = set(text_terms(without_urls(prose)))
    weighed = {
        term: weight
        * (TITLE_BOOST if term in title_terms else 1.0)
        * (1.0 if term in prose_terms else CODE_ONLY_TERM)
        for term, weight in query.items()
    }
    return weighed, prose_terms


_FROM_IMPORT = re.compile(r"^[ \t]*from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)", re.M)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w.]+(?:[ \t]*,[ \t]*[\w.]+)*)", re.M)
_IMPORT_AS = re.compile(r"^[ \t]*import[ \t]+([\w.]+)[ \t]+as[ \t]+(\w+)", re.M)
_NAME = re.compile(r"[A-Za-z_]\w*")
_LEADING_NAME = re.compile(r"(?<![\w.])[A-Za-z_]\w*")  # a name not after a dot: `ast` in `ast.parse(x)`


def _uses_dotted(text: str, name: str) -> bool:
    """Whether `text` uses the dotted module name `name` (`a.b` in `a.b.f()`), not a longer name."""
    return re.search(r"(?<![\w.])" + re.escape(name) + r"\b", text) is not None


def _from_imports(path: str, text: str) -> Iterator[tuple[str, str]]:
    """Each `from M import names` of a file, as (M with a relative M resolved against its package, names)."""
    own = module_names(path)
    package = own[-1].split(".") if own else []
    if not path.endswith("__init__.py"):
        package = package[:-1]
    for match in _FROM_IMPORT.finditer(text):
        module, names = match.group(1), match.group(2)
        dots = len(module) - len(module.lstrip("."))
        if dots:
            anchor = package[: len(package) - dots + 1]
            module = ".".join([*anchor, module.lstrip(".")]).strip(".")
        yield module, names


def imported_names(path: str, text: str, by_module: Mapping[str, int]) -> dict[str, int]:
    """The names a Python file binds by importing a repository file: local name → that file's index.

    `from a.b import c` binds `c` to a/b/c.py when that is a module, else to a/b.py (or
    a/b/__init__.py); `import a.b as m` binds `m`; `import a.b` binds `a.b` (used as `a.b.x`);
    relative imports are resolved against the file's package (`by_module`: module name → index).

    >>> by_module = {"pkg.core": 0, "pkg.util": 1, "pkg.io.read": 2}
    >>> imported_names("pkg/io/__init__.py", "from ..core import x as y\\nfrom . import read", by_module)
    {'y': 0, 'read': 2}
    """
    out: dict[str, int] = {}
    for module, names in _from_imports(path, text):
        target = by_module.get(module)
        for clause in names.split("#")[0].strip("()").split(","):
            words = _NAME.findall(clause)
            if not words:
                continue
            name, local = words[0], words[-1]
            sub = by_module.get(f"{module}.{name}")
            if sub is not None:
                out[local] = sub
            elif target is not None:
                out[local] = target
    for match in _IMPORT.finditer(text):
        for clause in match.group(1).split(","):
            module = clause.strip()
            target = by_module.get(module)
            if target is not None:
                out[module] = target
    for match in _IMPORT_AS.finditer(text):
        target = by_module.get(match.group(1))
        if target is not None:
            out[match.group(2)] = target
    return out


def imported_files(path: str, text: str, by_module: Mapping[str, int]) -> set[int]:
    """The repository files a Python file imports (`by_module`: module name → file index).

    `from a.b import c` imports a/b/c.py when that is a module, else a/b.py (or a/b/__init__.py);
    relative imports are resolved against the file's package.

    >>> by_module = {"pkg.core": 0, "pkg.util": 1, "pkg.io.read": 2}
    >>> sorted(imported_files("pkg/io/__init__.py", "from ..core import x\\nfrom . import read", by_module))
    [0, 2]
    """
    out: set[int] = set()
    for module, names in _from_imports(path, text):
        target = by_module.get(module)
        for name in _NAME.findall(names.split("#")[0]):
            sub = by_module.get(f"{module}.{name}")
            if sub is not None:
                out.add(sub)
            elif target is not None and name != "as":
                out.add(target)
    for match in _IMPORT.finditer(text):
        for module in match.group(1).split(","):
            target = by_module.get(module.strip())
            if target is not None:
                out.add(target)
    return out


def modules_by_name(paths: Sequence[str]) -> dict[str, int]:
    """Module name → the index of the file it is (the first of several, as imports resolve)."""
    by_module: dict[str, int] = {}
    for index, path in enumerate(paths):
        for name in module_names(path):
            by_module.setdefault(name, index)
    return by_module


def call_hop(
    paths: Sequence[str],
    base: Sequence[float],
    text_of: Callable[[int], str],
    query: Mapping[str, float],
    parts_of: PartsLoader,
    by_module: Mapping[str, int] | None = None,
    imports_of: Callable[[int], Mapping[str, int]] | None = None,
) -> dict[int, float]:
    """What the files the best part of a HOP_TOP best file uses gain: W_CALL_HOP × its share × the gap.

    The best part (the stretch between two definitions that best matches the task, BM25 among
    the parts of those files) is where the task's code is; a repository file it uses by a name
    it imports (`ast.parse(…)` after `from sphinx.pycode import ast`) is where that code goes
    next — the second file of a fix, whatever words it has. The gain is × (1 − the used file's
    own share of the best score): a file the task's words already rank high keeps its place, so the
    hop lifts files from far down without reordering the best few.
    """
    if by_module is None:
        by_module = modules_by_name(paths)
    top = [t for t in sorted(range(len(paths)), key=lambda i: -base[i])[:HOP_TOP] if module_names(paths[t])]
    best = max((base[i] for i in top), default=0.0) or 1.0
    tables = parts_of(top)
    totals = part_scores([table for file_tables in tables for table in file_tables], query)
    best_part: dict[int, tuple[float, int]] = {}
    at = 0
    for t, file_tables in zip(top, tables, strict=True):
        scored = totals[at : at + len(file_tables)]
        at += len(file_tables)
        if scored and max(scored) > 0:
            best_part[t] = (max(scored), scored.index(max(scored)))
    texts = {t: text_of(t) for t in best_part}
    out: dict[int, float] = {}
    for t, (_, k) in best_part.items():
        imports = imports_of(t) if imports_of else imported_names(paths[t], texts[t], by_module)
        if not imports:
            continue
        stretches = part_texts(texts[t])
        if k >= len(stretches):  # parts from another version of the text: say nothing
            continue
        part = stretches[k]
        words = set(_LEADING_NAME.findall(part))
        used = {name for name in imports if name in words or ("." in name and _uses_dotted(part, name))}
        targets = {imports[name] for name in used} - {t}
        if not targets:
            continue
        for target in targets:
            # the hop is for files the task's words do not reach: one they reach keeps its place
            gain = W_CALL_HOP * (base[t] / best) * max(0.0, 1.0 - base[target] / best)
            if gain > out.get(target, 0.0):
                out[target] = gain
    return out


def one_hop(
    paths: Sequence[str],
    base: Sequence[float],
    text_of: Callable[[int], str],
    by_module: Mapping[str, int] | None = None,
    imports_of: Callable[[int], Mapping[str, int]] | None = None,
) -> dict[int, float]:
    """What the files the HOP_TOP best import gain: W_HOP × the importer's share × their own.

    A bug's second file is often one the first imports; a file imported by a top file gains in
    proportion to both that file's score and its own (how much the task points at it), so an
    imported module the task says nothing about gains nothing.
    """
    if by_module is None:
        by_module = modules_by_name(paths)
    top = sorted(range(len(paths)), key=lambda i: -base[i])[:HOP_TOP]
    best = max((base[i] for i in top), default=0.0) or 1.0
    out: dict[int, float] = {}
    for t in top:
        if not module_names(paths[t]):
            continue
        imported = (
            set(imports_of(t).values()) if imports_of else imported_files(paths[t], text_of(t), by_module)
        )
        for target in imported - {t}:
            value = W_HOP * (base[t] / best) * (base[target] / best)
            if value > out.get(target, 0.0):
                out[target] = value
    return out


def rerank_by_parts(
    scores: Sequence[FileScore], query: Mapping[str, float], parts_of: PartsLoader
) -> list[FileScore]:
    """Second stage: the RERANK_TOP best files gain W_PARTS × (their best part's BM25 / the best).

    A part is a file's text between two definitions (a function, a class, a method). A whole-file
    BM25 dilutes the one function an issue is about in a long file; the best-matching part does not.
    `query`: the weighted terms of the first stage (`query_terms`).
    """
    top = sorted(range(len(scores)), key=lambda i: (-scores[i].score, scores[i].path))[:RERANK_TOP]
    if len(top) < 2:
        return list(scores)
    best = best_part_scores(parts_of(top), query)
    most = max(best) or 1.0
    out = list(scores)
    for i, part in zip(top, best, strict=True):
        s = scores[i]
        out[i] = FileScore(s.path, s.score + W_PARTS * part / most, s.bm25, s.named)
    return out


def personalised_pagerank(
    features: Sequence[FileFeatures],
    seeds: Sequence[float],
    *,
    damping: float = 0.85,
    iterations: int = 30,
    terms_of: TermsLoader | None = None,
) -> list[float]:
    """PageRank over "file uses a name another file defines", restarting at the best-seeded files.

    An edge A → B for each name B defines (defined in at most a few files) that A's terms contain,
    weighted by the square root of how often A uses it; the restart vector is the top seed scores.
    Only the part of the graph within GRAPH_HOPS of the seeds is built: with restarts, rank further
    out is damped to almost nothing, and building the whole graph of a large repository is slow.
    """
    n = len(features)
    if n == 0:
        return []
    ranked = sorted(range(n), key=lambda i: -seeds[i])[:_GRAPH_SEEDS]
    restart = {i: seeds[i] for i in ranked if seeds[i] > 0}
    total = sum(restart.values())
    if not total:
        return [0.0] * n
    edges: dict[int, dict[int, float]] = {}
    frontier = list(restart)
    for _ in range(GRAPH_HOPS):
        frontier = [i for i in dict.fromkeys(frontier) if i not in edges]
        frontier_terms = terms_of(frontier) if terms_of else [features[i].terms for i in frontier]
        # only names the frontier uses can make an edge: find their definers, not every file's
        used = set().union(*(t.keys() for t in frontier_terms))
        definers: dict[str, list[int]] = {}
        for target, f in enumerate(features):
            for name in f.definitions:
                if len(name) >= 4:
                    lowered = name.lower()
                    if lowered in used:
                        definers.setdefault(lowered, []).append(target)
        reached: list[int] = []
        for index, terms in zip(frontier, frontier_terms, strict=True):
            out: dict[int, float] = {}
            for term, uses in terms.items():
                targets = definers.get(term)
                # a name defined in many files says little about who uses whom
                if targets and len(targets) <= _GRAPH_MAX_DEFINERS:
                    for target in targets:
                        if target != index:
                            out[target] = out.get(target, 0.0) + math.sqrt(uses)
            edges[index] = out
            reached.extend(t for t in out if t not in edges)
        frontier = reached
    restart_vector = {i: v / total for i, v in restart.items()}
    rank_vector: dict[int, float] = dict(restart_vector)
    no_links: dict[int, float] = {}
    weights = {source: sum(links.values()) for source, links in edges.items()}  # the same every round
    for _ in range(iterations):
        nxt: dict[int, float] = {}
        dangling = 0.0
        for source, mass in rank_vector.items():
            links = edges.get(source) or no_links
            weight = weights.get(source, 0)
            if not weight:
                dangling += mass
                continue
            for target, w in links.items():
                nxt[target] = nxt.get(target, 0.0) + damping * mass * w / weight
        leftover = (1.0 - damping) + damping * dangling
        for i, v in restart_vector.items():
            nxt[i] = nxt.get(i, 0.0) + leftover * v
        rank_vector = nxt
    return [rank_vector.get(i, 0.0) for i in range(n)]
