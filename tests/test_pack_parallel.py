"""The fast paths of pack compute what the plain ones do: the secret scan's needle search, feature
worker processes, token counts in background threads."""

from __future__ import annotations

import os
import random
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tokenpilot as tp
from tokenpilot._pack import features as features_module
from tokenpilot._pack import secrets
from tokenpilot._pack import workers as workers_module
from tokenpilot._pack.assemble import _Counts
from tokenpilot._pack.cache import PackCache
from tokenpilot._pack.discover import discover
from tokenpilot._pack.features import FeatureTable
from tokenpilot._tokens import tokenizer_for

REPO_SRC = Path(__file__).resolve().parent.parent / "src" / "tokenpilot"


def _plain_suspect_lines(text: str) -> set[int]:
    """The suspect lines as one finditer pass per pattern finds them (the definition)."""
    starts = [m.start() for m in secrets._SUSPECT_LITERAL.finditer(text)]
    starts += [m.start() for m in secrets._SUSPECT_KEYWORD.finditer(text.lower())]
    for pattern in (secrets._SUSPECT_QUOTED, secrets._SUSPECT_TOKEN):
        starts += [
            m.start()
            for m in pattern.finditer(text)
            if re.search(r"\d", m.group(0)) and re.search(r"[A-Za-z]", m.group(0))
        ]
    return {text.count("\n", 0, start) for start in starts}


# pieces that make the patterns match, almost match, run into each other and span lines
PIECES = [
    "AKIA",
    "ASIA",
    "IOSFODNN7EXAMPLE",
    "ghp_",
    "github_pat_",
    "gh",
    "glpat-",
    "xoxb-",
    "xox",
    "sk_live_",
    "rk_test_",
    "sk-",
    "AIza",
    "eyJ",
    "-----BEGIN RSA PRIVATE KEY-----",
    "://user:pa55@host",
    "://",
    "password",
    "PassWord",
    "token",
    "api_key",
    "client-secret",
    "İ",
    "K",
    "é",
    " = ",
    ": ",
    "=",
    "'",
    '"',
    "\n",
    " ",
    "\t",
    "a1b2c3d4e5f6g7h8",
    "Z9" * 9,
    "x" * 20,
    "0123456789",
    "/+=_-",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=60))
def test_the_needle_scan_finds_the_lines_the_plain_regex_passes_find(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert secrets._suspect_lines(text) == _plain_suspect_lines(text)


def test_the_needle_scan_agrees_with_the_plain_passes_on_real_source() -> None:
    for path in sorted(REPO_SRC.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert secrets._suspect_lines(text) == _plain_suspect_lines(text), path


def _tree(root: Path, files: int) -> Path:
    rng = random.Random(7)
    words = ["parse", "Token", "HTTPAdapter", "retry_count", "x2", "é_name", "value", "Session", "_private"]
    for n in range(files):
        body = [f'"""Module {n}."""', "import os", ""]
        for d in range(rng.randint(1, 6)):
            name = f"{rng.choice(words)}_{n}_{d}"
            body += [
                f"def {name}(a, b):",
                f"    return {' + '.join(rng.choices(words, k=rng.randint(1, 12)))}",
                "",
            ]
        body.append(f"class Thing{n}:\n    def method(self):\n        pass\n")
        (root / f"pkg{n % 7}").mkdir(exist_ok=True)
        (root / f"pkg{n % 7}" / f"mod{n}.py").write_text("\n".join(body), encoding="utf-8")
    return root


@pytest.mark.skipif(sys.platform != "linux", reason="feature workers are forked on Linux only")
def test_feature_workers_compute_the_features_the_process_computes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = list(discover(_tree(tmp_path, 300)).files)
    monkeypatch.setattr(features_module, "POOL_MIN_CHARS", 1_000)  # the pool starts after a few files
    monkeypatch.setattr(features_module, "POOL_BATCH", 16)
    results = []
    for workers in (0, 2):
        table = FeatureTable(None, PackCache(None), workers=workers)
        for start in range(0, len(files), 50):
            table.add(files[start : start + 50])
        table.finish(files)
        assert table.workers == workers
        results.append(
            (
                [(f.length, f.definitions) for f in table.features],
                [dict(t) for t in table.terms_of(range(len(files)))],
            )
        )
    assert results[0] == results[1]


@pytest.mark.skipif(sys.platform != "linux", reason="feature workers are forked on Linux only")
def test_a_pack_with_feature_workers_is_the_pack_without_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tree").mkdir()
    root = _tree(tmp_path / "tree", 300)
    task = "retry_count is lost when HTTPAdapter parses the Session token"
    monkeypatch.setattr(features_module, "POOL_MIN_CHARS", 10**12)
    alone = tp.pack(root, task, 3000, "gpt-4o", cache=tmp_path / "alone.sqlite3")
    monkeypatch.setattr(features_module, "POOL_MIN_CHARS", 1_000)
    # other tests may leave an idle thread behind (tqdm's monitor, from bm25s), which turns workers off
    monkeypatch.setattr(features_module, "pool_workers", lambda: 2)
    started = []
    real = features_module.fork_pool

    def recording_pool(*args: object, **kwargs: object) -> object:
        started.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(features_module, "fork_pool", recording_pool)
    with_workers = tp.pack(root, task, 3000, "gpt-4o", cache=tmp_path / "workers.sqlite3")
    assert started, "the pool was not used"
    assert with_workers.text == alone.text
    assert with_workers.report()["files"] == alone.report()["files"]


def test_no_worker_is_forked_from_a_process_with_other_threads() -> None:
    import threading

    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert workers_module.pool_workers() == 0
    finally:
        stop.set()
        other.join()


@given(st.text(max_size=3000), st.booleans())
@settings(max_examples=50, deadline=None)
def test_counts_made_in_background_threads_are_the_tokenizers_counts(text: str, long: bool) -> None:
    tokenizer = tokenizer_for("gpt-4o")
    text = text * 3 if long else text
    counts = _Counts(tokenizer)
    try:
        assert counts.later(text).result() == tokenizer.count(text)
    finally:
        counts.close()


@pytest.mark.skipif(sys.platform != "linux", reason="feature workers are forked on Linux only")
def test_a_busy_machine_computes_in_process_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(workers_module.WORKERS_ENV, raising=False)
    monkeypatch.setattr(workers_module.threading, "active_count", lambda: 1)  # other tests' idle threads
    monkeypatch.setattr(workers_module.os, "sched_getaffinity", lambda _: {0, 1}, raising=False)
    monkeypatch.setattr(workers_module.os, "getloadavg", lambda: (1.9, 1.0, 1.0))
    assert workers_module.pool_workers() == 0  # unset is auto: a busy machine computes in-process
    monkeypatch.setattr(workers_module.os, "getloadavg", lambda: (0.0, 1.0, 1.0))
    assert workers_module.pool_workers() == 2  # and an idle one uses the workers
    monkeypatch.setenv(workers_module.WORKERS_ENV, "auto")
    monkeypatch.setattr(workers_module.os, "getloadavg", lambda: (1.9, 1.0, 1.0))
    assert workers_module.pool_workers() == 0
    monkeypatch.setattr(workers_module.os, "getloadavg", lambda: (0.8, 1.0, 1.0))
    assert workers_module.pool_workers() == 2
    monkeypatch.setattr(workers_module.os, "getloadavg", lambda: (9.0, 1.0, 1.0))
    monkeypatch.setenv(workers_module.WORKERS_ENV, "3")
    assert workers_module.pool_workers() == 3
    monkeypatch.setenv(workers_module.WORKERS_ENV, "0")
    assert workers_module.pool_workers() == 0


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["xml", "markdown", "plain"]),
    st.sampled_from(["gpt-4", "gpt-4o"]),  # cl100k_base, o200k_base
    st.integers(min_value=0, max_value=10**7),
    st.text(min_size=1, max_size=200),
    st.lists(
        st.tuples(st.sampled_from(["full", "outline", "slices", "path"]), st.text(max_size=300)), max_size=4
    ),
)
def test_a_packs_count_is_its_headers_count_plus_the_rests(
    fmt: str, model: str, tokens: int, task: str, shown: list[tuple[str, str]]
) -> None:
    from tokenpilot._pack import render as rendering

    files = [rendering.ShownFile(f"pkg/m{n}.py", tier, body) for n, (tier, body) in enumerate(shown)]
    head, rest = rendering.render_parts(fmt, budget=27000, tokens=tokens, task=task, files=files, omitted=3)
    assert head + rest == rendering.render(
        fmt, budget=27000, tokens=tokens, task=task, files=files, omitted=3
    )
    tokenizer = tokenizer_for(model)
    assert tokenizer.name in ("cl100k_base", "o200k_base")
    assert tokenizer.count(head + rest) == tokenizer.count(head) + tokenizer.count(rest)


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")
def test_files_examined_in_workers_are_packed_as_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokenpilot._pack import examine as examine_module

    (tmp_path / "tree").mkdir()
    root = _tree(tmp_path / "tree", 120)
    # a secret in a file the task is about: redacted in a worker as here
    (root / "pkg0" / "settings.py").write_text(
        'AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"\n\ndef retry_count(session):\n    return session.token\n',
        encoding="utf-8",
    )
    task = "retry_count loses the Session token in pkg0/settings.py; HTTPAdapter parses it"
    monkeypatch.setattr(examine_module, "pool_workers", lambda: 0)
    alone = tp.pack(root, task, 6000, "gpt-4o", cache=tmp_path / "alone.sqlite3")
    monkeypatch.setattr(examine_module, "POOL_MIN_CHARS", 1)
    monkeypatch.setattr(examine_module, "pool_workers", lambda: 2)
    started = []
    real = examine_module.fork_pool

    def recording_pool(*args: object, **kwargs: object) -> object:
        started.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(examine_module, "fork_pool", recording_pool)
    cache = tmp_path / "workers.sqlite3"
    with_workers = tp.pack(root, task, 6000, "gpt-4o", cache=cache)
    assert started, "the pool was not used"
    assert with_workers.text == alone.text
    assert with_workers.report()["files"] == alone.report()["files"]
    assert with_workers.redacted == alone.redacted and alone.redacted
    assert "AKIAIOSFODNN7EXAMPLE" not in with_workers.text
    # what the workers found was cached as it is here: a warm run gives the same pack
    assert tp.pack(root, task, 6000, "gpt-4o", cache=cache).text == alone.text


_PARENT = 0
_REAL_FEATURES: object = None
_REAL_EXAMINE: object = None


def _dying_features(*args: object) -> object:
    """Dies in a worker (what an out-of-memory kill looks like to the pool); works in the parent."""
    if os.getpid() != _PARENT:
        os._exit(3)
    return _REAL_FEATURES(*args)  # type: ignore[operator]


def _dying_examine(*args: object) -> object:
    if os.getpid() != _PARENT:
        os._exit(3)
    return _REAL_EXAMINE(*args)  # type: ignore[operator]


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")
def test_a_worker_that_dies_leaves_the_pack_as_it_would_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tokenpilot._pack import examine as examine_module

    (tmp_path / "tree").mkdir()
    root = _tree(tmp_path / "tree", 200)
    task = "retry_count is lost when HTTPAdapter parses the Session token"
    monkeypatch.setattr(features_module, "pool_workers", lambda: 0)
    monkeypatch.setattr(examine_module, "pool_workers", lambda: 0)
    alone = tp.pack(root, task, 5000, "gpt-4o", cache=tmp_path / "alone.sqlite3")
    monkeypatch.setattr(sys.modules[__name__], "_PARENT", os.getpid())
    monkeypatch.setattr(sys.modules[__name__], "_REAL_FEATURES", features_module._encoded_features)
    monkeypatch.setattr(sys.modules[__name__], "_REAL_EXAMINE", examine_module._examine_fresh)
    monkeypatch.setattr(features_module, "_encoded_features", _dying_features)
    monkeypatch.setattr(examine_module, "_examine_fresh", _dying_examine)
    monkeypatch.setattr(features_module, "POOL_MIN_CHARS", 1_000)
    monkeypatch.setattr(features_module, "POOL_BATCH", 16)
    monkeypatch.setattr(examine_module, "POOL_MIN_CHARS", 1)
    monkeypatch.setattr(features_module, "pool_workers", lambda: 2)
    monkeypatch.setattr(examine_module, "pool_workers", lambda: 2)
    survived = tp.pack(root, task, 5000, "gpt-4o", cache=tmp_path / "survived.sqlite3")
    assert survived.text == alone.text
    assert "a feature worker process failed" in caplog.text
    assert "an examine worker process failed" in caplog.text
