"""BM25 through bm25s: the documented formula, path weighting, and the on-disk index cache."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tokenpilot._pack import lexical
from tokenpilot._pack.features import FileFeatures, file_features
from tokenpilot._pack.lexical import LexicalIndex, fingerprint, lexical_index

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
