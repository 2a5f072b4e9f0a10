"""The on-disk cache: keyed by content hash, shared safely, never required."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import tokenpilot as tp
from tokenpilot._pack.cache import PackCache, default_cache_path


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
