"""The on-disk cache: keyed by content hash, shared safely, never required."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tokenpilot as tp
from tokenpilot._pack.cache import PackCache, default_cache_path
from tokenpilot._pack.discover import STAT_KIND, FileChanged, discover
from tokenpilot._walk import TextFile


def _tree(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(12):
        (root / f"m{i}.py").write_text(
            f"def func_{i}(x):\n    '''Doc {i}.'''\n    return x * {i}\n" * (i + 1)
        )
    return root


def test_default_cache_lives_under_xdg_cache_home() -> None:
    assert str(default_cache_path()).startswith(os.environ["XDG_CACHE_HOME"])


def test_warm_run_gives_the_same_bytes_as_a_cold_run(tmp_path: Path) -> None:
    root = _tree(tmp_path / "repo")
    cache = tmp_path / "cache.sqlite3"
    cold = tp.pack(root, "what does func_3 do", 600, "gpt-4", cache=cache)
    assert cache.exists()
    warm = tp.pack(root, "what does func_3 do", 600, "gpt-4", cache=cache)
    uncached = tp.pack(root, "what does func_3 do", 600, "gpt-4", cache=False)
    assert cold.text == warm.text == uncached.text


def test_changed_file_is_not_served_from_the_cache(tmp_path: Path) -> None:
    root = _tree(tmp_path / "repo")
    cache = tmp_path / "cache.sqlite3"
    tp.pack(root, "func_3", 5000, "gpt-4", cache=cache)
    (root / "m3.py").write_text("def renamed_thing():\n    return 3\n")
    result = tp.pack(root, "renamed_thing", 5000, "gpt-4", cache=cache)
    assert "renamed_thing" in result.text.split("</tree>", 1)[1]


def test_no_cache_writes_nothing(tmp_path: Path) -> None:
    root = _tree(tmp_path / "repo")
    tp.pack(root, "func_1", 500, "gpt-4", cache=False)
    assert not default_cache_path().exists()


def test_concurrent_runs_share_one_cache_file(tmp_path: Path) -> None:
    root = _tree(tmp_path / "repo")
    cache = tmp_path / "cache.sqlite3"
    results: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(tp.pack(root, "func_5 returns", 800, "gpt-4", cache=cache).text)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(results)) == 1


def test_a_corrupt_cache_file_does_not_fail_the_pack(tmp_path: Path) -> None:
    root = _tree(tmp_path / "repo")
    cache = tmp_path / "cache.sqlite3"
    cache.write_bytes(b"this is not a database" * 100)
    result = tp.pack(root, "func_2", 500, "gpt-4", cache=cache)
    assert result.tokens <= 500


def test_cache_round_trips_values_by_kind_and_key(tmp_path: Path) -> None:
    store = PackCache(tmp_path / "c.sqlite3")
    store.put_many("k:1", {"a": "1", "b": "2"})
    assert store.get_many("k:1", ["a", "b", "c"]) == {"a": "1", "b": "2"}
    assert store.get_many("k:2", ["a"]) == {}
    store.close()


def test_damaged_cache_entries_are_recomputed_not_trusted(tmp_path: Path) -> None:
    root = _tree(tmp_path / "repo")
    cache = tmp_path / "cache.sqlite3"
    first = tp.pack(root, "func_4", 700, "gpt-4", cache=cache)
    import sqlite3

    with sqlite3.connect(cache) as db:
        db.execute(
            "UPDATE entries SET value = 'not json' WHERE kind LIKE 'features%' OR kind LIKE 'secrets%'"
            " OR kind LIKE 'terms%' OR kind LIKE 'outline-counts%'"
        )
    again = tp.pack(root, "func_4", 700, "gpt-4", cache=cache)
    assert again.text == first.text


def test_warm_run_reuses_the_bm25_index_saved_beside_the_cache(tmp_path: Path) -> None:
    root = _tree(tmp_path / "repo")
    cache = tmp_path / "cache.sqlite3"
    cold = tp.pack(root, "what does func_3 do", 600, "gpt-4", cache=cache)
    indexes = sorted((tmp_path / "cache.sqlite3.bm25").iterdir())
    assert len(indexes) == 2  # the text index and the index of defined names
    stamps = [index.stat().st_mtime_ns for index in indexes]
    warm = tp.pack(root, "what does func_3 do", 600, "gpt-4", cache=cache)
    assert warm.text == cold.text
    assert sorted((tmp_path / "cache.sqlite3.bm25").iterdir()) == indexes
    assert all(index.stat().st_mtime_ns >= stamp for index, stamp in zip(indexes, stamps, strict=True))


# --- files known by their stat: a warm run reads only what it shows ---------------------------


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files `discover` and lazily loaded texts read from now on (by name)."""
    import tokenpilot._pack.discover as discovery

    seen: list[str] = []
    real = discovery.read_text

    def counting(path: Path, max_bytes: int | None = None) -> TextFile:
        seen.append(path.name)
        return real(path, max_bytes=max_bytes)

    real_unchanged = discovery._read_unchanged

    def counting_unchanged(source: str, expected: tuple[int, int, int, int, int]) -> str | None:
        seen.append(Path(source).name)
        return real_unchanged(source, expected)

    monkeypatch.setattr(discovery, "read_text", counting)
    monkeypatch.setattr(discovery, "_read_unchanged", counting_unchanged)
    return seen


@pytest.fixture
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by the test count as old enough to be known by their stat."""
    monkeypatch.setattr("tokenpilot._pack.discover.RACY_NS", 0)


def test_second_discovery_reads_no_unchanged_file_until_its_text_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_racy_window: None
) -> None:
    root = _tree(tmp_path / "repo")
    store = PackCache(tmp_path / "cache.sqlite3")
    first = discover(root, store=store)
    reads = _reads(monkeypatch)
    second = discover(root, store=store)
    assert reads == []
    assert [(f.path, f.digest, f.chars) for f in second.files] == [
        (f.path, f.digest, f.chars) for f in first.files
    ]
    assert second.files[3].text == first.files[3].text
    assert reads == [second.files[3].path]
    store.close()


def test_a_rewrite_with_the_same_size_and_mtime_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_racy_window: None
) -> None:
    root = _tree(tmp_path / "repo")
    cache = tmp_path / "cache.sqlite3"
    tp.pack(root, "func_3", 5000, "gpt-4", cache=cache)
    target = root / "m3.py"
    before = target.stat()
    text = target.read_text()
    target.write_text(text.replace("func_3", "fanc_3"))  # same size
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime: the ctime moved
    result = tp.pack(root, "fanc_3", 5000, "gpt-4", cache=cache)
    assert "def fanc_3(x):" in result.text
    assert result.text == tp.pack(root, "fanc_3", 5000, "gpt-4", cache=False).text


def test_files_changed_just_before_a_run_are_not_remembered_by_their_stat(tmp_path: Path) -> None:
    root = _tree(tmp_path / "repo")
    store = PackCache(tmp_path / "cache.sqlite3")
    discover(root, store=store)
    import sqlite3

    with sqlite3.connect(tmp_path / "cache.sqlite3") as db:
        rows = db.execute("SELECT count(*) FROM entries WHERE kind = ?", (STAT_KIND,)).fetchone()[0]
    assert rows == 0
    store.close()


def test_a_file_changed_during_the_pack_is_packed_as_it_is_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_racy_window: None
) -> None:
    root = _tree(tmp_path / "repo")
    cache = tmp_path / "cache.sqlite3"
    tp.pack(root, "func_3", 5000, "gpt-4", cache=cache)
    target = root / "m3.py"

    def edit_after_its_stat(stage: str, done: int, total: int) -> None:
        # the first discovery has taken m3.py's (known) stat by now; the text it would read later differs
        if stage == "discover" and done == total - 1 and "renamed_thing" not in target.read_text():
            target.write_text("def renamed_thing():\n    return 3\n")

    result = tp.pack(root, "renamed_thing", 5000, "gpt-4", cache=cache, progress=edit_after_its_stat)
    assert "def renamed_thing():" in result.text
    assert result.text == tp.pack(root, "renamed_thing", 5000, "gpt-4", cache=False).text


def test_a_file_whose_text_no_longer_has_its_digest_raises_file_changed(
    tmp_path: Path, no_racy_window: None
) -> None:
    root = _tree(tmp_path / "repo")
    store = PackCache(tmp_path / "cache.sqlite3")
    discover(root, store=store)
    files = {f.path: f for f in discover(root, store=store).files}
    (root / "m2.py").write_text("changed\n")
    with pytest.raises(FileChanged):
        _ = files["m2.py"].text
    store.close()


def test_a_file_rewritten_after_discovery_with_its_size_and_mtime_is_still_caught(
    tmp_path: Path, no_racy_window: None
) -> None:
    root = _tree(tmp_path / "repo")
    store = PackCache(tmp_path / "cache.sqlite3")
    discover(root, store=store)
    files = {f.path: f for f in discover(root, store=store).files}
    target = root / "m2.py"
    before = target.stat()
    text = target.read_text()
    target.write_text(text.replace("Doc", "Dog"))  # same size
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # the mtime put back: the ctime moved
    with pytest.raises(FileChanged):
        _ = files["m2.py"].text
    store.close()


_WORDS = ["parse", "render", "retry", "token", "budget", "cache", "widget", "frame", "error", "value"]
_FILE = st.lists(st.sampled_from(_WORDS), min_size=1, max_size=4).map(
    lambda names: (
        "".join(
            f"def {name}_{k}(x):\n    '''{name} the {names[0]}.'''\n    return {name}(x) + {k}\n"
            for k, name in enumerate(names)
        )
        + "class Thing:\n    def method(self):\n        return 'cannot parse the token value'\n"
    )
)


def _pack_outputs(root: Path, task: str, cache: Path | bool) -> tuple[str, str]:
    result = tp.pack(root, task, 900, "gpt-4", cache=cache)
    report = result.report()
    report.pop("timing_ms")
    return result.text, repr(report)


@given(
    files=st.dictionaries(st.sampled_from([f"pkg/m{i}.py" for i in range(8)]), _FILE, min_size=2, max_size=6),
    changed=st.integers(0, 10),
    new_text=_FILE,
    tasks=st.lists(st.sampled_from(["parse the token", "retry budget", "render widget frame"]), min_size=2),
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_changed_file_changes_a_warm_pack_exactly_as_a_cold_pack_of_the_new_tree(
    files: dict[str, str], changed: int, new_text: str, tasks: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # every file known by its stat (written with distinct old mtimes), so the stat cache is used
    monkeypatch.setattr("tokenpilot._pack.discover.RACY_NS", 0)
    with tempfile.TemporaryDirectory() as work:
        root, cache = Path(work) / "repo", Path(work) / "cache.sqlite3"
        old = time.time_ns() - 10**11
        for n, (name, text) in enumerate(sorted(files.items())):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
            os.utime(root / name, ns=(old + n, old + n))
        for task in tasks:  # the cache filled by packs of the old tree, for every task
            _pack_outputs(root, task, cache)
        name = sorted(files)[changed % len(files)]
        (root / name).write_text(new_text)
        os.utime(root / name, ns=(old - 1, old - 1))  # a new mtime, older than any other
        for task in tasks:
            assert _pack_outputs(root, task, cache) == _pack_outputs(root, task, False)


def test_a_cache_of_the_first_schema_is_moved_to_a_rowid_table_keeping_its_entries(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "cache.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE entries (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
            " PRIMARY KEY (kind, key)) WITHOUT ROWID"
        )
        db.execute("INSERT INTO entries VALUES ('terms:1', 'abc', '{\"x\":1}')")
        db.execute("PRAGMA user_version = 1")
    store = PackCache(path)
    assert store.get_many("terms:1", ["abc", "missing"]) == {"abc": '{"x":1}'}
    store.put_many("terms:1", {"abc": '{"x":2}'})
    assert store.get_many("terms:1", ["abc"]) == {"abc": '{"x":2}'}
    store.close()
    with sqlite3.connect(path) as db:
        (schema,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'entries'").fetchone()
        assert "WITHOUT ROWID" not in schema
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
