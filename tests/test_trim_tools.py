"""Trimming outputs produced by the real tools: pytest, unittest, Python, gcc, mypy, ruff, git, find."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tokenpilot as tp

MODEL = "gpt-4o"
FAILING_TESTS = """
import pytest

@pytest.mark.parametrize("i", range(300))
def test_passes(i):
    assert i >= 0

def test_dict_value():
    data = {"a": 1}
    assert data["a"] == 2

def helper(x):
    return inner(x)

def inner(x):
    assert x == 3, "x should be three"

def test_deep():
    helper(4)

def test_raises():
    raise ValueError("bad value 42")
"""


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def pytest_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("pytest-run")
    (root / "test_sample.py").write_text(FAILING_TESTS)
    done = run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "test_sample.py"], root)
    assert done.returncode == 1
    return done.stdout


def test_pytest_keeps_every_failing_test_id_and_the_summary(pytest_output: str) -> None:
    result = tp.trim_output(pytest_output, 500, tool="pytest", model=MODEL, spill=False)
    assert result.format == "pytest" and result.mode == "smart" and result.tokens <= 500
    for test_id in ("test_dict_value", "test_deep", "test_raises"):
        assert f"FAILED test_sample.py::{test_id}" in result.text
    assert re.search(r"3 failed, 300 passed in [\d.]+s", result.text)


def test_pytest_drops_passing_progress_and_keeps_assertions(pytest_output: str) -> None:
    result = tp.trim_output(pytest_output, 800, tool="pytest", model=MODEL, spill=False)
    assert "PASSED" not in result.text
    assert "E       assert 1 == 2" in result.text
    assert "E       ValueError: bad value 42" in result.text


def test_pytest_is_detected_without_tool_name(pytest_output: str) -> None:
    assert tp.trim_output(pytest_output, 500, model=MODEL, spill=False).format == "pytest"


def test_unittest_keeps_failure_headers_exception_and_result(tmp_path: Path) -> None:
    cases = "\n".join(f"    def test_ok_{i}(self):\n        self.assertTrue(True)\n" for i in range(200))
    (tmp_path / "test_unit.py").write_text(
        "import unittest\n\nclass T(unittest.TestCase):\n"
        + cases
        + "    def test_bad(self):\n        self.assertEqual(1, 2)\n"
    )
    done = run([sys.executable, "-m", "unittest", "-v", "test_unit"], tmp_path)
    result = tp.trim_output(done.stderr, 150, tool="python -m unittest", model=MODEL, spill=False)
    assert result.format == "unittest" and result.tokens <= 150
    assert "FAIL: test_bad" in result.text
    assert "AssertionError: 1 != 2" in result.text
    assert "FAILED (failures=1)" in result.text


def test_traceback_keeps_exception_and_first_and_last_frames(tmp_path: Path) -> None:
    script = tmp_path / "deep.py"
    script.write_text(
        "import json\n\ndef level(n):\n    if n == 0:\n        json.loads('{broken')\n"
        "    return level(n - 1)\n\ndef main():\n    level(60)\n\nmain()\n"
    )
    done = run([sys.executable, str(script)], tmp_path)
    assert "Traceback" in done.stderr
    result = tp.trim_output(done.stderr, 250, model=MODEL, spill=False)
    assert result.format == "traceback" and result.tokens <= 250
    last_line = done.stderr.rstrip("\n").split("\n")[-1]
    assert last_line.startswith("json.decoder.JSONDecodeError")
    assert last_line in result.text
    assert 'deep.py", line 11, in <module>' in result.text  # the first frame
    assert "raise JSONDecodeError" in result.text or "obj, end = self.scan_once" in result.text


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_gcc_first_error_kept_and_repeats_collapsed_with_count(tmp_path: Path) -> None:
    body = "".join(f"    int v{i} = missing_{i % 3};\n" for i in range(60))
    (tmp_path / "broken.c").write_text("int f(int x) { return x }\nint main(void) {\n" + body + "}\n")
    done = run(["gcc", "-Wall", "-c", "broken.c", "-o", "/dev/null"], tmp_path)
    assert done.returncode != 0
    result = tp.trim_output(done.stderr, 300, tool="gcc", model=MODEL, spill=False)
    assert result.format == "diagnostics" and result.tokens <= 300
    first_error = next(x for x in done.stderr.split("\n") if ": error: " in x)
    assert first_error in result.text
    assert re.search(r"\[×\d+ in total; also at broken\.c:\d+", result.text)


def test_mypy_keeps_each_distinct_error_and_summary(tmp_path: Path) -> None:
    body = "".join(f"def f{i}(x: int) -> str:\n    return x + {i}\n\n" for i in range(40))
    (tmp_path / "typed.py").write_text(body + "y: int = 'text'\n")
    done = run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", str(tmp_path / "c"), "typed.py"],
        tmp_path,
    )
    assert done.returncode == 1
    result = tp.trim_output(done.stdout, 200, tool="mypy", model=MODEL, spill=False)
    assert result.tokens <= 200
    assert 'typed.py:121: error: Incompatible types in assignment (expression has type "str"' in result.text
    assert "Found 41 errors in 1 file" in result.text


def test_ruff_full_output_keeps_every_rule_code(tmp_path: Path) -> None:
    lines = [f"import mod{i}" for i in range(40)] + ["x = undefined_thing", "l = 1", "print(l == None)"]
    (tmp_path / "lint_me.py").write_text("\n".join(lines) + "\n")
    done = run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "F,E", "lint_me.py"], tmp_path
    )
    assert done.returncode == 1
    result = tp.trim_output(done.stdout, 300, tool="ruff", model=MODEL, spill=False)
    assert result.format == "diagnostics" and result.tokens <= 300
    for code in ("F401", "F821", "E711"):
        assert code in result.text


def test_diff_keeps_file_and_hunk_headers_before_context(tmp_path: Path) -> None:
    old = [f"line {i}" for i in range(400)]
    new = [f"line {i} changed" if i % 40 == 0 else f"line {i}" for i in range(400)]
    (tmp_path / "a.txt").write_text("\n".join(old) + "\n")
    (tmp_path / "b.txt").write_text("\n".join(new) + "\n")
    done = run(["git", "diff", "--no-index", "-U8", "a.txt", "b.txt"], tmp_path)
    hunks = [x for x in done.stdout.split("\n") if x.startswith("@@")]
    result = tp.trim_output(done.stdout, 600, tool="git diff", model=MODEL, spill=False)
    assert result.format == "diff" and result.tokens <= 600
    assert "diff --git a/a.txt b/b.txt" in result.text
    assert all(h in result.text for h in hunks)
    assert all(f"+line {i} changed" in result.text for i in range(0, 400, 40))
    assert " line 205" not in result.text  # context far from a change goes first


def test_find_listing_keeps_shallow_entries_and_collapses_deep_ones(tmp_path: Path) -> None:
    for top in ("alpha", "beta", "gamma"):
        for sub in range(15):
            deep = tmp_path / "tree" / top / f"sub{sub}" / "deeper"
            deep.mkdir(parents=True)
            for k in range(5):
                (deep / f"file{k}.txt").write_text("")
    done = run(["find", "."], tmp_path / "tree")
    result = tp.trim_output(done.stdout, 300, tool="find", model=MODEL, spill=False)
    assert result.format == "listing" and result.tokens <= 300
    kept = result.text.splitlines()
    assert {"./alpha", "./beta", "./gamma"} <= set(kept)
    # Every entry is shown or counted once; a directory collapsed whole says what it holds.
    counts = [int(m.group(1)) for line in kept if (m := re.match(r"^    \[… (\d+) \w+ entr", line))]
    assert sum(1 for line in kept if line.startswith("./")) + sum(counts) == done.stdout.count("\n") - 1
    assert "    [… 105 deeper entries …]" in kept
    roomier = tp.trim_output(done.stdout, 1000, tool="find", model=MODEL, spill=False)
    assert re.search(r"/sub\d+/deeper\n    \[… 5 deeper entries …\]", roomier.text) and roomier.tokens <= 1000


def test_json_keeps_keys_and_stays_valid_json() -> None:
    value = {"items": [{"id": i, "name": f"item {i}", "tags": ["x"] * 5} for i in range(500)], "total": 500}
    result = tp.trim_output(json.dumps(value, indent=2), 300, model=MODEL, spill=False)
    assert result.format == "json" and result.tokens <= 300
    shrunk = json.loads(result.text)
    assert shrunk["total"] == 500 and set(shrunk["items"][0]) == {"id", "name", "tags"}
    assert "more items" in result.text


def test_log_collapses_repeats_with_counts_and_keeps_errors(tmp_path: Path) -> None:
    handler_file = tmp_path / "app.log"
    logger = logging.getLogger("trim-test-app")
    handler = logging.FileHandler(handler_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    for i in range(2000):
        logger.info("heartbeat %d ok", i)
        if i == 1234:
            logger.error("database connection lost: timeout after %d ms", 5000)
        if i % 500 == 0:
            logger.warning("slow request id=%d", i)
    handler.close()
    logger.removeHandler(handler)
    text = handler_file.read_text()
    result = tp.trim_output(text, 200, model=MODEL, spill=False)
    assert result.format == "log" and result.tokens <= 200
    assert "ERROR trim-test-app: database connection lost: timeout after 5000 ms" in result.text
    assert re.search(r"\[… ×\d[\d,]* similar lines …\]", result.text)
