"""BM25 of the task against every file (Lucene's, as the `bm25s` library scores it), kept on disk.

Documents are the code-aware terms of each file (`terms.text_terms`: identifiers, their snake_case
and camelCase parts) plus the terms of its path repeated PATH_TERM_WEIGHT times (a path is a short,
strong field: `sympy/printing/latex.py` says more than one more use of `latex` in the body).
Scores are Lucene's BM25 as bm25s computes them: per query term
idf × tf / (tf + k1 (1 - b + b |d| / avg |d|)), idf = ln(1 + (N - df + 0.5)/(df + 0.5)), k1 = 1.2,
b = 0.75 (Lucene drops Robertson's constant factor k1 + 1, which changes no ranking), each
(document, term) score stored as float32 in a term-major sparse matrix.

The query is weighted per term (1 + ln(count in the task), × NAMED_TERM_BOOST for the code names
the task mentions), so each distinct query term is scored on its own and the weighted scores summed.

bm25s builds from token lists (every occurrence again) and scoring with it imports numpy and
bm25s, which alone take longer than a warm pack of sympy should; so the matrix is built here from
the term counts (numpy, only when an index is built), scored in plain Python from `array`s, and
tests/test_pack_lexical.py checks it against bm25s's own index bit for bit. Building reads every
term of every file while scoring one query takes milliseconds, so the index is saved under the pack
cache's directory, keyed by a fingerprint of the (path, content hash) list, and read back when the
same tree is packed again. A few recent indexes are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import math
import operator
import os
import shutil
import sys
import tempfile
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from tokenpilot._pack.features import FileFeatures
from tokenpilot._pack.terms import path_terms

log = logging.getLogger(__name__)

K1 = 1.2
B = 0.75
PATH_TERM_WEIGHT = 5
INDEX_VERSION = f"lucene-csc:3:{sys.byteorder}"  # the arrays are saved in this machine's byte order
KEEP_INDEXES = 16  # most recently used indexes (two per tree: text, names) kept on disk; older removed


def fingerprint(paths: Sequence[str], digests: Sequence[str], field: str = "text") -> str:
    """A key for the corpus: equal for the same files with the same contents, in the same order."""
    kind = "" if field == "text" else f":{field}"  # the text index keeps the key it always had
    h = hashlib.sha256(f"{INDEX_VERSION}:{K1}:{B}:{PATH_TERM_WEIGHT}{kind}\n".encode())
    for path, digest in zip(paths, digests, strict=True):
        h.update(f"{path}\0{digest}\n".encode())
    return h.hexdigest()[:32]


def _idf(df: int, n_docs: int) -> float:
    """bm25s's Lucene idf (a Python float, stored as float32 by the caller)."""
    return math.log(1 + (n_docs - df + 0.5) / (df + 0.5))


def _norm(length: int, average: float) -> float:
    """The length normalisation of a document, in bm25s's order of operations."""
    return K1 * ((1 - B) + B * length / average)


class SortedVocabulary:
    """Term → id of a saved index, looked up by binary search in the saved text (no dict is built).

    A query has a few dozen terms while a large tree's vocabulary has 10⁵: making the dict of a
    loaded index took most of reading it back. `text` is the terms one a line in id order,
    `offsets[i]` where term i starts in it (one past the end last), `order` the ids sorted by term.

    >>> v = SortedVocabulary.of(["parse", "alpha", "zeta"])
    >>> v.get("zeta"), v.get("parse"), v.get("beta")
    (2, 0, None)
    """

    def __init__(self, text: str, offsets: array[int], order: array[int]) -> None:
        self._text = text
        self._offsets = offsets
        self._order = order

    @classmethod
    def of(cls, terms: Sequence[str]) -> SortedVocabulary:
        """The vocabulary of these terms (in id order), as `save` writes it."""
        # where each term starts: the lengths of the terms before it and their newlines, summed
        offsets = array(
            "q", itertools.accumulate(map(operator.add, map(len, terms), itertools.repeat(1)), initial=0)
        )
        order = array("i", sorted(range(len(terms)), key=terms.__getitem__))
        return cls("\n".join(terms), offsets, order)

    def __len__(self) -> int:
        return len(self._order)

    def term(self, token: int) -> str:
        return self._text[self._offsets[token] : self._offsets[token + 1] - 1]

    def get(self, term: str) -> int | None:
        order, low, high = self._order, 0, len(self._order)
        while low < high:
            middle = (low + high) // 2
            if self.term(order[middle]) < term:
                low = middle + 1
            else:
                high = middle
        if low < len(order) and self.term(order[low]) == term:
            return order[low]
        return None


class LexicalIndex:
    """A BM25 index over a repository's files (same order as the paths it was built from).

    `data[j]` is the float32 score of document `indices[j]` for the term whose entries are
    `indptr[t]:indptr[t + 1]` (`vocab` maps terms to `t`).

    >>> from tokenpilot._pack.features import file_features
    >>> index = LexicalIndex.build(["a.py", "b.py"], [file_features("def parse(): pass"),
    ...                                              file_features("def render(): pass")])
    >>> [round(s, 3) > 0 for s in index.scores({"parse": 1.0})]
    [True, False]
    """

    def __init__(
        self,
        vocab: Mapping[str, int] | SortedVocabulary,
        data: array[float],
        indices: array[int],
        indptr: array[int],
        n_docs: int,
    ) -> None:
        self._vocab = vocab
        self._data = data
        self._indices = indices
        self._indptr = indptr
        self.n_docs = n_docs

    @classmethod
    def build(
        cls, paths: Sequence[str], features: Iterable[FileFeatures], path_weight: int = PATH_TERM_WEIGHT
    ) -> LexicalIndex:
        """Index the files' terms (and their path terms, each counted `path_weight` times)."""
        # a term's id is the order it first occurs in (a missing term takes the next number): the ids
        # of a file's terms are looked up in one C-level `map`, not a Python loop over every term
        vocab: defaultdict[str, int] = defaultdict(itertools.count().__next__)
        term_ids = array("i")
        term_counts = array("i")
        lengths: list[int] = []
        sizes: list[int] = []
        for path, f in zip(paths, features, strict=True):
            counts = dict(f.terms)
            for term in path_terms(path) if path_weight else ():
                counts[term] = counts.get(term, 0) + path_weight
            term_ids.extend(map(vocab.__getitem__, counts))
            term_counts.extend(counts.values())
            lengths.append(sum(counts.values()))
            sizes.append(len(counts))
        n_docs, n_vocab = len(lengths), len(vocab)
        if not vocab:  # no file has a term: every score is 0
            return cls({}, array("f"), array("i"), array("q", [0]), n_docs)
        import numpy as np

        doc_of = np.repeat(np.arange(n_docs, dtype=np.int32), sizes)
        vocab_of = np.frombuffer(term_ids, dtype=np.int32)
        tf = np.frombuffer(term_counts, dtype=np.int32).astype(np.float32)
        del term_counts  # from here on every large array is let go as soon as it is used
        doc_freq = np.bincount(vocab_of, minlength=n_vocab)
        idf_of_df = {int(df): _idf(int(df), n_docs) for df in np.unique(doc_freq)}
        idf = np.asarray([idf_of_df[int(df)] for df in doc_freq], dtype=np.float32)
        average = sum(lengths) / n_docs
        norm = K1 * ((1 - B) + B * np.asarray(lengths, dtype=np.float64) / average)
        # idf × tf / (norm + tf) in float64 on float32 inputs, rounded to float32 (what bm25s does
        # on numpy 2); in place, as a large tree has millions of (file, term) pairs
        scores64 = norm[doc_of]
        scores64 += tf
        np.divide(tf, scores64, out=scores64)
        scores64 *= idf[vocab_of]
        scores = scores64.astype(np.float32)
        del scores64, tf
        by_term = np.argsort(vocab_of, kind="stable")  # term-major; documents ascending in each term
        del vocab_of, term_ids
        indptr = array("q", bytes(8 * (n_vocab + 1)))
        np.cumsum(doc_freq, out=np.frombuffer(indptr, dtype=np.int64)[1:])
        data, indices = array("f"), array("i")
        data.frombytes(scores[by_term].data.cast("B"))
        del scores
        del lengths, sizes
        indices.frombytes(doc_of[by_term].data.cast("B"))
        vocab.default_factory = None  # numbering done: from here a lookup adds no term (and no copy)
        return cls(vocab, data, indices, indptr, n_docs)

    def scores(self, query: Mapping[str, float]) -> list[float]:
        """Σ weight × BM25 of each query term, for every file."""
        total = [0.0] * self.n_docs
        data, indices, indptr = self._data, self._indices, self._indptr
        # sorted: summing in a fixed order makes the float result the same on every run
        for term in sorted(query):
            token = self._vocab.get(term)
            if token is None:
                continue
            weight = query[term]
            for j in range(indptr[token], indptr[token + 1]):
                total[indices[j]] += weight * data[j]
        return total

    def save(self, directory: Path) -> None:
        """Write the index (atomically: a temporary directory renamed)."""
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=directory.parent))
        try:
            # one term a line, in id order (terms never hold a newline), with where each starts and
            # the ids in term order: read back without building a dict of every term
            vocab = (
                self._vocab
                if isinstance(self._vocab, SortedVocabulary)
                else SortedVocabulary.of(list(self._vocab))
            )
            (staging / "vocab.txt").write_text(vocab._text, encoding="utf-8")
            (staging / "offsets.i64").write_bytes(vocab._offsets.tobytes())
            (staging / "order.i32").write_bytes(vocab._order.tobytes())
            (staging / "data.f32").write_bytes(self._data.tobytes())
            (staging / "indices.i32").write_bytes(self._indices.tobytes())
            (staging / "indptr.i64").write_bytes(self._indptr.tobytes())
            (staging / "n_docs").write_text(str(self.n_docs))
            os.replace(staging, directory)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        """Read an index `save` wrote."""
        n_docs = int((directory / "n_docs").read_text())
        listed = (directory / "vocab.txt").read_text(encoding="utf-8")
        data, indices, indptr, offsets, order = array("f"), array("i"), array("q"), array("q"), array("i")
        data.frombytes((directory / "data.f32").read_bytes())
        indices.frombytes((directory / "indices.i32").read_bytes())
        indptr.frombytes((directory / "indptr.i64").read_bytes())
        offsets.frombytes((directory / "offsets.i64").read_bytes())
        order.frombytes((directory / "order.i32").read_bytes())
        n_vocab = len(order)
        if (
            len(indptr) != n_vocab + 1
            or len(offsets) != n_vocab + 1
            or offsets[-1] != (len(listed) + 1 if n_vocab else 0)
            or len(data) != len(indices)
            or indptr[-1] != len(data)
        ):
            raise ValueError("the index files do not fit together")
        return cls(SortedVocabulary(listed, offsets, order), data, indices, indptr, n_docs)


def lexical_index(
    paths: Sequence[str],
    digests: Sequence[str],
    features: Iterable[FileFeatures] | Callable[[], Iterable[FileFeatures]],
    cache_dir: Path | None,
    field: str = "text",
) -> LexicalIndex:
    """The index of these files: loaded from `cache_dir` when built before, else built (and saved).

    `features` may be a function giving them, called only when the index has to be built.
    `field`: "text" (each file's terms and path terms) or "names" (the terms of the names each
    file defines, `features.name_terms`, as the features' terms; no path terms).
    """
    path_weight = PATH_TERM_WEIGHT if field == "text" else 0
    if callable(features):
        make = features
    else:
        given = features

        def make() -> Iterable[FileFeatures]:
            return given

    if cache_dir is None:
        return LexicalIndex.build(paths, make(), path_weight)
    directory = cache_dir / fingerprint(paths, digests, field)
    if directory.is_dir():
        try:
            index = LexicalIndex.load(directory)
            if index.n_docs == len(paths):
                with contextlib.suppress(OSError):
                    os.utime(directory)  # recently used: kept by the pruning below
                return index
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring a damaged BM25 index: %s", exc, extra={"index": str(directory)})
    index = LexicalIndex.build(paths, make(), path_weight)
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


def part_scores(tables: Sequence[Mapping[str, int]], query: Mapping[str, float]) -> list[float]:
    """BM25 of the query against each of these term tables, the tables as the corpus.

    >>> [round(x, 3) for x in part_scores([{"value": 1}, {"parse": 2}], {"parse": 1.0})]
    [0.0, 0.396]
    """
    total = [0.0] * len(tables)
    live = [d for d, t in enumerate(tables) if t]
    if not live or not query:
        return total
    n_docs = len(live)
    average = sum(sum(tables[d].values()) for d in live) / n_docs
    wanted = query.keys()
    # one pass over the tables (a set intersection each), not one per query term
    held = [(d, tables[d].keys() & wanted) for d in live]
    df: dict[str, int] = {}
    for _, terms in held:
        for term in terms:
            df[term] = df.get(term, 0) + 1
    idf = {term: _idf(k, n_docs) for term, k in df.items()}
    for d, terms in held:
        if terms:
            table = tables[d]
            norm = _norm(sum(table.values()), average)
            total[d] = sum(query[t] * idf[t] * table[t] / (norm + table[t]) for t in terms)
    return total


def best_part_scores(parts: Sequence[Sequence[Mapping[str, int]]], query: Mapping[str, float]) -> list[float]:
    """For each file, the best BM25 of the query against one of its parts (the parts as documents).

    `parts[i]`: the term tables of file i's parts. The parts of all the files form one small
    corpus, so idf is taken among them.

    >>> best_part_scores([[{"value": 1}, {"parse": 1}], [{"render": 1}]], {"parse": 1.0})[1]
    0.0
    """
    owners = [owner for owner, tables in enumerate(parts) for table in tables if table]
    tables = [table for file_parts in parts for table in file_parts if table]
    best = [0.0] * len(parts)
    if not tables or not query:
        return best
    n_docs = len(tables)
    lengths = [sum(t.values()) for t in tables]
    average = sum(lengths) / n_docs
    norms = [_norm(length, average) for length in lengths]
    total = [0.0] * n_docs
    for term in sorted(query):  # the order LexicalIndex.scores sums in
        hits = [(d, t[term]) for d, t in enumerate(tables) if t.get(term)]
        if not hits:
            continue
        (idf,) = array("f", [_idf(len(hits), n_docs)])
        scored = array("f", [idf * (tf / (norms[d] + tf)) for d, tf in hits])
        weight = query[term]
        for (d, _), score in zip(hits, scored, strict=True):
            total[d] += weight * score
    for owner, score in zip(owners, total, strict=True):
        best[owner] = max(best[owner], score)
    return best
