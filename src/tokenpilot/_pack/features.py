"""What ranking needs of each file: its terms, length, definitions and parts — cached by content hash.

`file_features` and `file_parts` compute them from a file's text; `FeatureTable` loads them for a
whole tree from the pack cache (computing and storing the missing ones while discovery has each
file's text in hand) and loads the large term tables only when something needs them.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from tokenpilot._pack.cache import PackCache
from tokenpilot._pack.discover import SourceFile
from tokenpilot._pack.terms import forget_words, identifier_terms, text_terms

log = logging.getLogger(__name__)

FEATURES_KIND = "features:2"  # length and definitions
TERMS_KIND = "terms:1"
PARTS_KIND = "parts:1"  # term tables of the stretches between definitions
_WRITE_CHUNK = 500
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


def file_parts(text: str) -> list[dict[str, int]]:
    """Term tables of a text's parts: the stretches between the starts of its definitions.

    >>> [sorted(p) for p in file_parts("import os\\ndef parse_it():\\n    pass\\n")]
    [['os'], ['parse', 'parse_it']]
    """
    bounds = sorted({0, *(m.start() for m in _DEFINITION.finditer("\n" + text)), len(text)})
    return [terms for begin, end in itertools.pairwise(bounds) if (terms := text_terms(text[begin:end]))]


class FeatureTable:
    """Per-file ranking features from the cache; the (large) term tables only when needed.

    Lengths and definitions of every file are always loaded. The term tables feed the BM25 index,
    so when the index of this exact tree is already on disk (a warm run) only the few files the
    graph stage reads need theirs: decoding every table is most of a warm run's ranking time.
    `add` takes the features of files while their text is in memory (discovery hands over each
    batch it reads); `finish` (or the constructor, given the files) completes the table.
    """

    def __init__(self, files: Sequence[SourceFile] | None, store: PackCache) -> None:
        self.store = store
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
        if files is not None:
            self.finish(files)

    def add(self, files: Sequence[SourceFile]) -> None:
        """The features of these files: from the cache, else computed from their text."""
        started = time.perf_counter()
        wanted = [f for f in files if f.digest not in self._known]
        cached = self.store.get_many(FEATURES_KIND, [f.digest for f in wanted])
        for f in wanted:
            if f.digest in self._known:  # the same content twice
                continue
            raw = cached.get(f.digest)
            if raw is not None:
                try:
                    data = json.loads(raw)
                    self._known[f.digest] = FileFeatures({}, int(data["n"]), tuple(data["d"]))
                    continue
                except (ValueError, KeyError, TypeError):
                    log.warning("ignoring a damaged cache entry", extra={"path": f.path})
            computed = file_features(f.text)
            self._known[f.digest] = FileFeatures({}, computed.length, computed.definitions)
            self._fresh_meta[f.digest] = json.dumps(
                {"n": computed.length, "d": list(computed.definitions)}, separators=(",", ":")
            )
            encoded = json.dumps(computed.terms, separators=(",", ":"))
            self._fresh_terms[f.digest] = encoded
            if not self.store.enabled:  # else read back from the cache when the index takes them
                self._encoded[f.digest] = encoded
            if (
                len(self._fresh_terms) >= _WRITE_CHUNK
            ):  # written as they come: a large tree's tables are large
                self.store.put_many(TERMS_KIND, self._fresh_terms)
                self._fresh_terms.clear()
        self.elapsed_ms += (time.perf_counter() - started) * 1000.0

    def finish(self, files: Sequence[SourceFile]) -> None:
        """The features of every file, in order (those not added yet: cache, else read and computed)."""
        self.files = files
        self.add(files)
        started = time.perf_counter()
        self.store.put_many(TERMS_KIND, self._fresh_terms)
        self.store.put_many(FEATURES_KIND, self._fresh_meta)
        self._fresh_terms.clear()
        self._fresh_meta.clear()
        self.features = [self._known[f.digest] for f in files]
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
