"""What ranking needs of each file: its terms, length, definitions and parts — cached by content hash.

`file_features` and `file_parts` compute them from a file's text; `FeatureTable` loads them for a
whole tree from the pack cache (computing and storing the missing ones while discovery has each
file's text in hand) and loads the large term tables only when something needs them.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import BrokenExecutor, Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tokenpilot._pack.cache import PackCache
from tokenpilot._pack.discover import SourceFile, load_together
from tokenpilot._pack.terms import forget_words, identifier_terms, text_terms
from tokenpilot._pack.workers import fork_pool, pool_workers

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

log = logging.getLogger(__name__)

FEATURES_KIND = "features:2"  # length and definitions
FEATURES_TREE_KIND = "features-tree:1"  # a root -> the FEATURES_KIND entries of its files, in one
TERMS_KIND = "terms:1"
PARTS_KIND = "parts:2"  # term tables of the stretches between definitions (empty ones kept: `part_texts`)
_WRITE_CHUNK = 500
# a cold scan computes the features in worker processes once this much text was computed here
# (a small tree is done before a pool would start); batches of POOL_BATCH files, at most
# _IN_FLIGHT_PER_WORKER batches a worker ahead of the merge (their texts are held until done)
POOL_MIN_CHARS = 2_000_000
POOL_BATCH = 128
_IN_FLIGHT_PER_WORKER = 2
# a definition at the start of a line (what follows the line's indentation)
DEFINITION_TAIL = (
    r"(?:export\s+)?(?:default\s+)?(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?"
    r"(?:def|class|function\*?|interface|enum|type|struct|trait|fn|func(?:\s*\([^)]*\))?)\s+([A-Za-z_]\w*)"
)
# matched against "\n" + text: a leading literal "\n" finds line starts by a fast scan (`^` with
# MULTILINE is tried at every position), and the lookahead of the tail's first letters fails most
# lines at once; the matches and their starts are those of `^[ \t]*` + DEFINITION_TAIL (MULTILINE)
_DEFINITION = re.compile(r"\n[ \t]*(?=[acdefipst])" + DEFINITION_TAIL)


@dataclass(frozen=True, slots=True)
class FileFeatures:
    """What ranking needs of one file's content (cached by content hash)."""

    terms: Mapping[str, int]
    length: int
    definitions: tuple[str, ...]


def file_features(text: str) -> FileFeatures:
    """Terms and definitions of a file's text."""
    terms = text_terms(text)
    definitions = tuple(dict.fromkeys(_DEFINITION.findall("\n" + text)))
    return FileFeatures(terms, sum(terms.values()), definitions)


_Rows = list[tuple[int, tuple[str, ...], str]]  # per file: length, definitions, terms JSON


def _encoded_features(texts: Sequence[str]) -> _Rows:
    """Length, definitions and terms JSON of each text (the work a pool worker does for a batch)."""
    out = []
    for text in texts:
        computed = file_features(text)
        out.append((computed.length, computed.definitions, json.dumps(computed.terms, separators=(",", ":"))))
    return out


_DAMAGED = object()


def _decoded(raw: Mapping[str, str]) -> dict[str, Any]:
    """The JSON values of cache entries, parsed in one call (a warm run reads one per file).

    An entry that is not JSON on its own is `_DAMAGED` (the caller says so and recomputes it).
    """
    keys = list(raw)
    try:
        values = json.loads("[" + ",".join(raw[k] for k in keys) + "]")
    except ValueError:
        values = None
    if not isinstance(values, list) or len(values) != len(keys):
        values = []
        for k in keys:
            try:
                values.append(json.loads(raw[k]))
            except ValueError:
                values.append(_DAMAGED)
    return dict(zip(keys, values, strict=True))


def name_terms(definitions: Sequence[str]) -> dict[str, int]:
    """The terms of the names a file defines (a field of its own for ranking: `rank.W_NAMES`).

    >>> name_terms(("LatexPrinter", "_print_Pow"))
    {'latexprinter': 1, 'latex': 1, 'printer': 1, 'print_pow': 1, 'print': 1, 'pow': 1}
    """
    counts: dict[str, int] = {}
    for name in definitions:
        for term in identifier_terms(name):
            counts[term] = counts.get(term, 0) + 1
    return counts


def part_texts(text: str) -> list[str]:
    """A text's parts: the stretches between the starts of its definitions (`file_parts`' texts).

    >>> part_texts("import os\\ndef parse_it():\\n    pass\\n")
    ['import os\\n', 'def parse_it():\\n    pass\\n']
    """
    bounds = sorted({0, *(m.start() for m in _DEFINITION.finditer("\n" + text)), len(text)})
    return [text[begin:end] for begin, end in itertools.pairwise(bounds)]


def file_parts(text: str) -> list[dict[str, int]]:
    """Term tables of a text's parts: the stretches between the starts of its definitions.

    One per `part_texts` stretch, in order (a stretch without terms has an empty table), so a
    part's table and its text are found by the same index.

    >>> [sorted(p) for p in file_parts("import os\\ndef parse_it():\\n    pass\\n")]
    [['os'], ['parse', 'parse_it']]
    """
    return [text_terms(part) for part in part_texts(text)]


class FeatureTable:
    """Per-file ranking features from the cache; the (large) term tables only when needed.

    Lengths and definitions of every file are always loaded. The term tables feed the BM25 index,
    so when the index of this exact tree is already on disk (a warm run) only the few files the
    graph stage reads need theirs: decoding every table is most of a warm run's ranking time.
    `add` takes the features of files while their text is in memory (discovery hands over each
    batch it reads); `finish` (or the constructor, given the files) completes the table.
    """

    def __init__(
        self,
        files: Sequence[SourceFile] | None,
        store: PackCache,
        *,
        workers: int | None = None,
        tree: str | None = None,
    ) -> None:
        self.store = store
        # `tree` (the root's absolute path): the lengths and definitions of all its files are also
        # kept in one cache entry under it, so a warm run reads one row, not one per file
        self._tree = tree
        self._together: dict[str, Any] | None = None
        # None: pool_workers() once the scan is large enough; 0: always in-process
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._in_flight: collections.deque[tuple[list[SourceFile], Future[_Rows] | None]]
        self._in_flight = collections.deque()
        self._pending: set[str] = set()  # digests handed to the pool, not merged yet
        self._computed_chars = 0
        self.files: Sequence[SourceFile] = ()
        self.features: list[FileFeatures] = []
        self._terms: dict[int, Mapping[str, int]] = {}
        self._known: dict[str, FileFeatures] = {}  # by digest, without their term tables
        # with the cache off, the tables computed here, as their JSON (several times smaller than
        # the dicts) until used
        self._encoded: dict[str, str] = {}
        self._fresh_meta: dict[str, str] = {}
        self._fresh_terms: dict[str, str] = {}
        self.elapsed_ms = 0.0  # time spent in `add` and `finish`
        self._damaged = False  # a cached entry was damaged: the one entry of the tree is written again
        if files is not None:
            self.finish(files)

    def add(self, files: Sequence[SourceFile]) -> None:
        """The features of these files: from the cache, else computed from their text."""
        started = time.perf_counter()
        wanted = [f for f in files if f.digest not in self._known and f.digest not in self._pending]
        if self._together is None:
            self._together = load_together(self.store, FEATURES_TREE_KIND, self._tree) if self._tree else {}
        together = self._together
        cached: dict[str, Any] = {
            f.digest: entry for f in wanted if (entry := together.get(f.digest)) is not None
        }
        if len(cached) < len(wanted):
            missing = [f.digest for f in wanted if f.digest not in cached]
            cached.update(_decoded(self.store.get_many(FEATURES_KIND, missing)))
        computed: list[SourceFile] = []
        for f in wanted:
            if f.digest in self._known or f.digest in self._pending:  # the same content twice
                continue
            data = cached.get(f.digest)
            if data is not None:
                try:
                    self._known[f.digest] = FileFeatures({}, int(data["n"]), tuple(data["d"]))
                    continue
                except (ValueError, KeyError, TypeError):
                    log.warning("ignoring a damaged cache entry", extra={"path": f.path})
                    self._damaged = True
            if self._pool_ready():
                computed.append(f)
                self._pending.add(f.digest)
                if len(computed) >= POOL_BATCH:
                    self._submit(computed)
                    computed = []
                continue
            self._computed_chars += f.chars
            result = file_features(f.text)
            encoded = json.dumps(result.terms, separators=(",", ":"))
            self._merge(f.digest, result.length, result.definitions, encoded)
        if computed:
            self._submit(computed)
        self.elapsed_ms += (time.perf_counter() - started) * 1000.0

    def _pool_ready(self) -> bool:
        """Whether to hand the next files to worker processes (starting them when it is time)."""
        if self._pool is not None:
            return True
        if self.workers == 0 or self._computed_chars < POOL_MIN_CHARS:
            return False
        workers = pool_workers() if self.workers is None else self.workers
        if workers <= 0:
            self.workers = 0
            return False
        self._pool = fork_pool(workers)
        self.workers = workers
        return True

    def _submit(self, files: Sequence[SourceFile]) -> None:
        while len(self._in_flight) >= _IN_FLIGHT_PER_WORKER * max(1, self.workers or 1):
            self._merge_oldest()
        future: Future[_Rows] | None = None
        if self._pool is not None:
            try:
                future = self._pool.submit(_encoded_features, [f.text for f in files])
            except BrokenExecutor:
                self._abandon_pool()
        self._in_flight.append((list(files), future))

    def _merge_oldest(self) -> None:
        """Take the results of the oldest batch in flight (results are merged in submission order)."""
        files, future = self._in_flight.popleft()
        rows: _Rows | None = None
        if future is not None:
            try:
                rows = future.result()
            except BrokenExecutor:  # a worker died (killed, out of memory): the work is done here
                self._abandon_pool()
        if rows is None:
            rows = _encoded_features([f.text for f in files])
        for f, (length, definitions, encoded) in zip(files, rows, strict=True):
            self._pending.discard(f.digest)
            self._merge(f.digest, length, definitions, encoded)

    def _abandon_pool(self) -> None:
        log.warning("a feature worker process failed: computing the features in-process")
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self.workers = 0

    def _merge(self, digest: str, length: int, definitions: tuple[str, ...], encoded: str) -> None:
        """Record one file's computed features, and write the term tables as they come."""
        self._known[digest] = FileFeatures({}, length, definitions)
        self._fresh_meta[digest] = json.dumps({"n": length, "d": list(definitions)}, separators=(",", ":"))
        self._fresh_terms[digest] = encoded
        if not self.store.enabled:  # else read back from the cache when the index takes them
            self._encoded[digest] = encoded
        if len(self._fresh_terms) >= _WRITE_CHUNK:  # written as they come: a large tree's tables are large
            self.store.put_many(TERMS_KIND, self._fresh_terms)
            self._fresh_terms.clear()

    def close(self) -> None:
        """Stop the worker processes, if any (what they have not merged is dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._in_flight.clear()
        self._pending.clear()

    def finish(self, files: Sequence[SourceFile]) -> None:
        """The features of every file, in order (those not added yet: cache, else read and computed)."""
        self.files = files
        self.add(files)
        started = time.perf_counter()
        while self._in_flight:
            self._merge_oldest()
        self.close()
        self.store.put_many(TERMS_KIND, self._fresh_terms)
        self.store.put_many(FEATURES_KIND, self._fresh_meta)
        self._fresh_terms.clear()
        self._fresh_meta.clear()
        self.features = [self._known[f.digest] for f in files]
        if self._tree and self.store.enabled:
            together = self._together or {}
            digests = {f.digest for f in files}
            if digests != together.keys() or self._damaged:
                known = self._known
                current = {d: {"n": known[d].length, "d": list(known[d].definitions)} for d in digests}
                encoded = json.dumps(current, separators=(",", ":"))
                self.store.put_many(FEATURES_TREE_KIND, {self._tree: encoded})
        forget_words()  # the scan is over: its word cache would only hold memory
        self.elapsed_ms += (time.perf_counter() - started) * 1000.0

    def terms_of(self, indices: Sequence[int]) -> list[Mapping[str, int]]:
        """The term tables of these files (cache, else computed from the text)."""
        for i in indices:
            if i not in self._terms and self.files[i].digest in self._encoded:
                self._terms[i] = json.loads(self._encoded.pop(self.files[i].digest))
        missing = [i for i in indices if i not in self._terms]
        cached = self.store.get_many(TERMS_KIND, [self.files[i].digest for i in missing])
        for i in missing:
            raw = cached.get(self.files[i].digest)
            terms: Mapping[str, int] | None = None
            if raw is not None:
                try:
                    loaded = json.loads(raw)
                    if isinstance(loaded, dict):
                        terms = loaded
                except ValueError:
                    log.warning("ignoring a damaged cache entry", extra={"path": self.files[i].path})
            self._terms[i] = terms if terms is not None else text_terms(self.files[i].text)
        return [self._terms[i] for i in indices]

    def parts_of(self, indices: Sequence[int]) -> list[list[dict[str, int]]]:
        """The term tables of these files' parts (cache, else computed from the text)."""
        digests = [self.files[i].digest for i in indices]
        cached = self.store.get_many(PARTS_KIND, digests)
        out: list[list[dict[str, int]]] = []
        fresh: dict[str, str] = {}
        for i, digest in zip(indices, digests, strict=True):
            parts: list[dict[str, int]] | None = None
            raw = cached.get(digest)
            if raw is not None:
                try:
                    loaded = json.loads(raw)
                    if isinstance(loaded, list) and all(isinstance(p, dict) for p in loaded):
                        parts = loaded
                except ValueError:
                    log.warning("ignoring a damaged cache entry", extra={"path": self.files[i].path})
            if parts is None:
                parts = file_parts(self.files[i].text)
                fresh[digest] = json.dumps(parts, separators=(",", ":"))
            out.append(parts)
        self.store.put_many(PARTS_KIND, fresh)
        return out

    def names(self) -> Iterator[FileFeatures]:
        """Each file's defined names as its terms (`name_terms`), for the names index."""
        for f in self.features:
            yield FileFeatures(name_terms(f.definitions), 0, ())

    def complete(self) -> Iterator[FileFeatures]:
        """Features with every file's term table, in file order (for building the BM25 index).

        Each table is handed over and forgotten (the index keeps the counts in compact arrays);
        the few files asked for later by `terms_of` are read again from the cache (or computed).
        """
        for start in range(0, len(self.files), _WRITE_CHUNK):
            chunk = range(start, min(start + _WRITE_CHUNK, len(self.files)))
            self.terms_of(chunk)
            for n in chunk:
                f = self.features[n]
                yield FileFeatures(self._terms.pop(n), f.length, f.definitions)
