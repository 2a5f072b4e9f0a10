"""BM25 through bm25s: the documented formula, path weighting, and the on-disk index cache."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenpilot._pack import lexical
from tokenpilot._pack.features import FileFeatures, file_features
from tokenpilot._pack.lexical import LexicalIndex, fingerprint, lexical_index
from tokenpilot._pack.terms import path_terms

pytest.importorskip("bm25s")


def _features(terms: dict[str, int]) -> FileFeatures:
    return FileFeatures(terms, sum(terms.values()), ())


def test_scores_follow_lucene_bm25_with_weighted_query_terms() -> None:
    docs = [{"parse": 3, "token": 1}, {"render": 2, "token": 2}, {"parse": 1, "render": 1, "other": 6}]
    paths = ["a", "b", "c"]  # paths too short to have terms: the documents are exactly `docs`
    index = LexicalIndex.build(paths, [_features(d) for d in docs])
    query = {"parse": 2.0, "token": 1.0}
    got = index.scores(query)
    lengths = [sum(d.values()) for d in docs]
    average = sum(lengths) / len(lengths)
    for doc, length, score in zip(docs, lengths, got, strict=True):
        expected = 0.0
        for term, weight in query.items():
            df = sum(1 for d in docs if term in d)
            idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
            tf = doc.get(term, 0)
            norm = lexical.K1 * (1 - lexical.B + lexical.B * length / average)
            expected += weight * idf * tf / (tf + norm)
        assert score == pytest.approx(expected, rel=1e-5)


def test_path_terms_count_for_a_file_whose_body_never_says_them() -> None:
    features = [file_features("def helper(): pass"), file_features("def helper(): pass")]
    index = LexicalIndex.build(["pkg/retry.py", "pkg/other.py"], features)
    retry, other = index.scores({"retry": 1.0})
    assert retry > 0 and other == 0


def test_index_is_saved_once_and_reloaded_with_equal_scores(tmp_path: Path) -> None:
    paths = ["a.py", "b.py", "c.py"]
    texts = ["def parse_header(): ...", "class Renderer: ...", "parse = Renderer()"]
    features = [file_features(t) for t in texts]
    digests = ["1", "2", "3"]
    built = lexical_index(paths, digests, features, tmp_path)
    saved = tmp_path / fingerprint(paths, digests)
    assert saved.is_dir()
    # a reload must not need the terms at all: give it empty features
    empty = [FileFeatures({}, 0, ()) for _ in paths]
    loaded = lexical_index(paths, digests, empty, tmp_path)
    query = {"parse": 1.0, "renderer": 1.5}
    assert loaded.scores(query) == built.scores(query)


def test_changed_content_gets_a_new_index(tmp_path: Path) -> None:
    paths = ["a.py"]
    lexical_index(paths, ["1"], [file_features("alpha")], tmp_path)
    index = lexical_index(paths, ["2"], [file_features("beta")], tmp_path)
    assert index.scores({"beta": 1.0})[0] > 0
    assert index.scores({"alpha": 1.0})[0] == 0


def test_damaged_index_is_rebuilt(tmp_path: Path) -> None:
    paths, digests = ["a.py"], ["1"]
    lexical_index(paths, digests, [file_features("alpha")], tmp_path)
    saved = tmp_path / fingerprint(paths, digests)
    for part in saved.iterdir():
        part.write_bytes(b"garbage")
    index = lexical_index(paths, digests, [file_features("alpha")], tmp_path)
    assert index.scores({"alpha": 1.0})[0] > 0


def test_only_the_most_recent_indexes_are_kept(tmp_path: Path) -> None:
    for n in range(lexical.KEEP_INDEXES + 3):
        lexical_index(["a.py"], [str(n)], [file_features("alpha")], tmp_path)
    assert len([p for p in tmp_path.iterdir() if not p.name.startswith(".")]) == lexical.KEEP_INDEXES


def test_best_part_score_favours_one_part_matching_the_whole_query() -> None:
    focused = [{"parse": 2, "header": 2}, {"unrelated": 40}]
    spread = [{"parse": 1, "filler": 20}, {"header": 1, "filler": 20}]
    a, b, c = lexical.best_part_scores([focused, spread, [{"nothing": 1}]], {"parse": 1.0, "header": 1.0})
    assert a > b > 0
    assert c == 0


def test_rerank_lifts_the_file_with_the_best_matching_definition_among_the_top() -> None:
    from tokenpilot._pack.features import file_parts
    from tokenpilot._pack.rank import W_PARTS, FileScore, query_terms, rerank_by_parts
    from tokenpilot._pack.terms import task_mentions

    texts = {
        "a.py": "def parse_header(value):\n    return parse(header(value))\n",
        "b.py": "def render():\n    pass\n",
    }
    scores = [FileScore("a.py", 1.0, 0.0, False), FileScore("b.py", 1.2, 0.0, False)]
    task = "parse_header fails on an empty header"
    out = rerank_by_parts(
        scores,
        query_terms(task, task_mentions(task).identifiers),
        lambda ix: [file_parts(texts[scores[i].path]) for i in ix],
    )
    assert out[0].score == pytest.approx(1.0 + W_PARTS)
    assert out[1].score == pytest.approx(1.2)


def _bm25s_own_scores(
    paths: list[str],
    features: list[FileFeatures],
    query: dict[str, float],
    path_weight: int = lexical.PATH_TERM_WEIGHT,
) -> Any:
    """bm25s's own index of the documents (every occurrence of every term) and its query scores."""
    import bm25s
    import numpy as np

    vocab: dict[str, int] = {}
    corpus: list[list[int]] = []
    for path, f in zip(paths, features, strict=True):
        doc: list[int] = []
        for term, count in f.terms.items():
            doc.extend([vocab.setdefault(term, len(vocab))] * count)
        for term in path_terms(path):
            doc.extend([vocab.setdefault(term, len(vocab))] * path_weight)
        corpus.append(doc)
    retriever = bm25s.BM25(k1=lexical.K1, b=lexical.B, method="lucene")
    retriever.index(bm25s.tokenization.Tokenized(ids=corpus, vocab=vocab), show_progress=False)
    total = np.zeros(len(corpus), dtype=np.float64)
    for term in sorted(query):
        if term in vocab:
            total += query[term] * retriever.get_scores([vocab[term]]).astype(np.float64)
    return retriever, [float(x) for x in total]


_TERMS = st.sampled_from(["parse", "token", "render", "retry", "expr", "mul", "pow", "a1", "zz"])
_DOCS = st.lists(
    st.tuples(
        st.sampled_from(["a", "pkg/parse.py", "src/render_token.py", "x/retry/mul.py", "b"]),
        st.dictionaries(_TERMS, st.integers(1, 40), max_size=6),
    ),
    min_size=1,
    max_size=12,
)
_QUERY = st.dictionaries(_TERMS, st.floats(0.5, 4.0), min_size=1, max_size=4)


@given(_DOCS, _QUERY)
@settings(max_examples=150, deadline=None)
def test_index_scores_bit_for_bit_as_bm25s_own_index(
    docs: list[tuple[str, dict[str, int]]], query: dict[str, float]
) -> None:
    paths = [path for path, _ in docs]
    features = [_features(terms) for _, terms in docs]
    if not any(f.terms for f in features) and not any(path_terms(p) for p in paths):
        return  # bm25s cannot index a corpus without a term
    ours = LexicalIndex.build(paths, features)
    retriever, expected = _bm25s_own_scores(paths, features, query)
    assert ours.scores(query) == expected
    assert {**ours._vocab, "": len(ours._vocab)} == retriever.vocab_dict
    assert ours._data.tolist() == retriever.scores["data"].tolist()
    assert ours._indices.tolist() == retriever.scores["indices"].tolist()
    assert ours._indptr.tolist() == retriever.scores["indptr"].tolist()


@given(_DOCS, _QUERY)
@settings(max_examples=100, deadline=None)
def test_names_index_without_path_terms_scores_bit_for_bit_as_bm25s(
    docs: list[tuple[str, dict[str, int]]], query: dict[str, float]
) -> None:
    paths = [path for path, _ in docs]
    features = [_features(terms) for _, terms in docs]
    if not any(f.terms for f in features):
        return  # bm25s cannot index a corpus without a term
    ours = LexicalIndex.build(paths, features, path_weight=0)
    _, expected = _bm25s_own_scores(paths, features, query, path_weight=0)
    assert ours.scores(query) == expected
    # every term's stored scores (bm25s numbers an empty document's term apart, so compare by term)
    for term in {t for f in features for t in f.terms}:
        assert ours.scores({term: 1.0}) == _bm25s_own_scores(paths, features, {term: 1.0}, path_weight=0)[1]


def test_the_names_index_is_kept_apart_from_the_text_index(tmp_path: Path) -> None:
    paths, digests = ["a.py", "b.py"], ["1", "2"]
    features = [_features({"parse": 3}), _features({"render": 1})]
    text = lexical_index(paths, digests, features, tmp_path)
    names = lexical_index(paths, digests, [_features({"render": 1}), _features({})], tmp_path, field="names")
    assert len(list(tmp_path.iterdir())) == 2
    assert text.scores({"parse": 1.0})[0] > 0 and names.scores({"parse": 1.0}) == [0.0, 0.0]
    assert names.scores({"render": 1.0})[0] > 0


@given(
    st.lists(st.lists(st.dictionaries(_TERMS, st.integers(1, 40), max_size=5), max_size=4), max_size=6),
    _QUERY,
)
@settings(max_examples=150, deadline=None)
def test_best_part_scores_equal_the_best_of_bm25s_scores_among_the_parts(
    parts: list[list[dict[str, int]]], query: dict[str, float]
) -> None:
    tables = [(owner, table) for owner, file_parts in enumerate(parts) for table in file_parts if table]
    expected = [0.0] * len(parts)
    if tables:
        _, scores = _bm25s_own_scores([""] * len(tables), [_features(t) for _, t in tables], query)
        for (owner, _), score in zip(tables, scores, strict=True):
            expected[owner] = max(expected[owner], score)
    assert lexical.best_part_scores(parts, query) == expected
