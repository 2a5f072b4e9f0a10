"""BM25 of the task against every file, with the `bm25s` library, its index kept on disk.

Documents are the code-aware terms of each file (`terms.text_terms`: identifiers, their snake_case
and camelCase parts) plus the terms of its path repeated PATH_TERM_WEIGHT times (a path is a short,
strong field: `sympy/printing/latex.py` says more than one more use of `latex` in the body). They
are fed to bm25s pre-tokenised; bm25s scores them with Lucene's BM25: per query term
idf × tf / (tf + k1 (1 - b + b |d| / avg |d|)), idf = ln(1 + (N - df + 0.5)/(df + 0.5)), k1 = 1.2,
b = 0.75 (Lucene drops Robertson's constant factor k1 + 1, which changes no ranking).

The query is weighted per term (1 + ln(count in the task), × NAMED_TERM_BOOST for the code names
the task mentions), so each distinct query term is scored on its own and the weighted scores summed.

Building the index reads every term of every file (about half a second for sympy's 2,000 files),
while scoring one query against it takes milliseconds; so the index is saved with bm25s's own
`save` under the pack cache's directory, keyed by a fingerprint of the (path, content hash) list,
and loaded (memory-mapped) when the same tree is packed again. A few recent indexes are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tokenpilot._exceptions import ConfigError
from tokenpilot._pack.features import FileFeatures
from tokenpilot._pack.terms import path_terms

log = logging.getLogger(__name__)

K1 = 1.2
B = 0.75
PATH_TERM_WEIGHT = 5
INDEX_VERSION = "bm25s:1"
KEEP_INDEXES = 8  # most recently used indexes kept on disk; older ones are removed


def _bm25s() -> Any:
    try:
        import bm25s
    except ImportError:
        raise ConfigError(
            "ranking needs the bm25s library (a dependency of tokenpilot): reinstall tokenpilot"
        ) from None
    return bm25s


def fingerprint(paths: Sequence[str], digests: Sequence[str]) -> str:
    """A key for the corpus: equal for the same files with the same contents, in the same order."""
    h = hashlib.sha256(f"{INDEX_VERSION}:{K1}:{B}:{PATH_TERM_WEIGHT}\n".encode())
    for path, digest in zip(paths, digests, strict=True):
        h.update(f"{path}\0{digest}\n".encode())
    return h.hexdigest()[:32]


class LexicalIndex:
    """A bm25s index over a repository's files (same order as the paths it was built from).

    >>> from tokenpilot._pack.features import file_features
    >>> index = LexicalIndex.build(["a.py", "b.py"], [file_features("def parse(): pass"),
    ...                                              file_features("def render(): pass")])
    >>> [round(s, 3) > 0 for s in index.scores({"parse": 1.0})]
    [True, False]
    """

    def __init__(self, retriever: Any, n_docs: int) -> None:
        self._retriever = retriever  # None: no file has a term, every score is 0
        self._vocab: Mapping[str, int] = retriever.vocab_dict if retriever is not None else {}
        self.n_docs = n_docs

    @classmethod
    def build(cls, paths: Sequence[str], features: Sequence[FileFeatures]) -> LexicalIndex:
        """Index the files' terms (and path terms) with bm25s."""
        bm25s = _bm25s()
        vocab: dict[str, int] = {}
        corpus: list[list[int]] = []
        for path, f in zip(paths, features, strict=True):
            doc: list[int] = []
            for term, count in f.terms.items():
                doc.extend([vocab.setdefault(term, len(vocab))] * count)
            for term in path_terms(path):
                doc.extend([vocab.setdefault(term, len(vocab))] * PATH_TERM_WEIGHT)
            corpus.append(doc)
        if not vocab:
            return cls(None, len(corpus))  # bm25s needs a term somewhere (an average length > 0)
        retriever = bm25s.BM25(k1=K1, b=B, method="lucene")
        retriever.index(bm25s.tokenization.Tokenized(ids=corpus, vocab=vocab), show_progress=False)
        return cls(retriever, len(corpus))

    def scores(self, query: Mapping[str, float]) -> list[float]:
        """Σ weight × BM25 of each query term, for every file."""
        import numpy as np

        total = np.zeros(self.n_docs, dtype=np.float64)
        if self._retriever is None:
            return [0.0] * self.n_docs
        # sorted: summing in a fixed order makes the float result the same on every run
        for term in sorted(query):
            token = self._vocab.get(term)
            if token is not None:
                total += query[term] * self._retriever.get_scores([token]).astype(np.float64)
        return [float(x) for x in total]

    def save(self, directory: Path) -> None:
        """Write the index with bm25s's own format (atomically: a temporary directory renamed)."""
        if self._retriever is None:
            return
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=directory.parent))
        try:
            self._retriever.save(str(staging), show_progress=False)
            (staging / "n_docs").write_text(str(self.n_docs))
            os.replace(staging, directory)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        """Read an index `save` wrote (memory-mapped)."""
        bm25s = _bm25s()
        n_docs = int((directory / "n_docs").read_text())
        retriever = bm25s.BM25.load(str(directory), mmap=True, show_progress=False, verbosity=0)
        return cls(retriever, n_docs)


def lexical_index(
    paths: Sequence[str],
    digests: Sequence[str],
    features: Sequence[FileFeatures] | Callable[[], Sequence[FileFeatures]],
    cache_dir: Path | None,
) -> LexicalIndex:
    """The index of these files: loaded from `cache_dir` when built before, else built (and saved).

    `features` may be a function giving them, called only when the index has to be built.
    """
    if callable(features):
        make = features
    else:
        given = features

        def make() -> Sequence[FileFeatures]:
            return given

    if cache_dir is None:
        return LexicalIndex.build(paths, make())
    directory = cache_dir / fingerprint(paths, digests)
    if directory.is_dir():
        try:
            index = LexicalIndex.load(directory)
            if index.n_docs == len(paths):
                with contextlib.suppress(OSError):
                    os.utime(directory)  # recently used: kept by the pruning below
                return index
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring a damaged BM25 index: %s", exc, extra={"index": str(directory)})
    index = LexicalIndex.build(paths, make())
    try:
        if directory.exists():
            shutil.rmtree(directory, ignore_errors=True)
        index.save(directory)
        _prune(cache_dir)
    except OSError as exc:
        log.warning("could not save the BM25 index: %s", exc, extra={"index": str(directory)})
    return index


def _prune(cache_dir: Path) -> None:
    """Keep the KEEP_INDEXES most recently used indexes (another run may be pruning too)."""
    entries = []
    for entry in cache_dir.iterdir():
        if entry.name.startswith("."):
            continue
        with contextlib.suppress(OSError):
            entries.append((entry.stat().st_mtime, entry.name, entry))
    for _, _, entry in sorted(entries, reverse=True)[KEEP_INDEXES:]:
        shutil.rmtree(entry, ignore_errors=True)


def best_part_scores(parts: Sequence[Sequence[Mapping[str, int]]], query: Mapping[str, float]) -> list[float]:
    """For each file, the best BM25 of the query against one of its parts (bm25s, parts as documents).

    `parts[i]`: the term tables of file i's parts. The parts of all the files form one small
    corpus, so idf is taken among them.

    >>> best_part_scores([[{"value": 1}, {"parse": 1}], [{"render": 1}]], {"parse": 1.0})[1]
    0.0
    """
    owners = [owner for owner, tables in enumerate(parts) for table in tables if table]
    tables = [dict(table) for file_parts in parts for table in file_parts if table]
    best = [0.0] * len(parts)
    if not tables or not query:
        return best
    index = LexicalIndex.build([""] * len(tables), [FileFeatures(t, sum(t.values()), ()) for t in tables])
    for owner, score in zip(owners, index.scores(query), strict=True):
        best[owner] = max(best[owner], score)
    return best
