"""Generate the trim benchmark's fixtures by running the real tools, each with the facts it must keep.

    .venv/bin/python bench/trim_fixtures.py            # writes bench/fixtures/trim/*.txt + facts.json

A fact is a string an engineer needs from the output (a failing test id, the exception line, the
first compiler error); it must appear verbatim in the trimmed text to count as kept. Facts are
derived from the outputs by rules stated beside each fixture, not typed by hand.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

OUT = Path(__file__).resolve().parent / "fixtures" / "trim"
Fixture = tuple[str, list[str]]  # output, facts


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def _pytest(work: Path, verbose: bool) -> Fixture:
    tests = [
        "import pytest",
        "",
        "@pytest.mark.parametrize('i', range(400))",
        "def test_ok(i):",
        "    assert i >= 0",
    ]
    tests += [
        "def test_compare():\n    assert [1, 2, 3] == [1, 2, 4]",
        "def test_key():\n    d = {'a': 1}\n    assert d['b'] == 1",
        "def _parse(s):\n    return int(s)\n\ndef test_parse():\n    assert _parse('x1') == 1",
        "class TestThing:\n    def test_method(self):\n        assert 'abc'.upper() == 'ABd'",
        "@pytest.mark.parametrize('n', [3, 40])\ndef test_param(n):\n    assert n < 10",
    ]
    (work / "test_bench.py").write_text("\n\n".join(tests) + "\n")
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_bench.py"]
    done = _run([*args, "-v"] if verbose else args, work)
    out = done.stdout
    # Facts: every failing test id, every `E` line that names an exception type, the final tally.
    ids = re.findall(r"^FAILED (\S+)", out, re.M)
    errors = sorted(set(re.findall(r"^E +(\w+Error: .*)$", out, re.M)))
    tally = re.findall(r"^=+ (\d+ failed.*?) in [\d.]+s", out, re.M)
    return out, ids + errors + tally


def _unittest(work: Path) -> Fixture:
    cases = "".join(f"    def test_ok_{i}(self):\n        self.assertTrue(True)\n" for i in range(300))
    bad = (
        "    def test_equal(self):\n        self.assertEqual(sum([1, 2]), 4)\n"
        "    def test_raises(self):\n        {}['missing']\n"
        "    def test_in(self):\n        self.assertIn('z', 'abc')\n"
    )
    (work / "test_units.py").write_text("import unittest\n\nclass Suite(unittest.TestCase):\n" + cases + bad)
    out = _run([sys.executable, "-m", "unittest", "-v", "test_units"], work).stderr
    heads = re.findall(r"^((?:FAIL|ERROR): \S+)", out, re.M)
    excs = re.findall(r"^(\w+Error: .*)$", out, re.M)
    result = re.findall(r"^(FAILED \(.*\))$", out, re.M)
    return out, heads + excs + result


def _traceback(work: Path) -> Fixture:
    (work / "deep.py").write_text(
        "import json\n\ndef load(n, text):\n    if n == 0:\n        return json.loads(text)\n"
        "    return load(n - 1, text)\n\ndef main():\n    for i in range(200):\n"
        "        print(f'processing record {i}')\n"
        "    load(120, '{\"a\": ')\n\nmain()\n"
    )
    done = _run([sys.executable, "deep.py"], work)
    out = done.stdout + done.stderr
    lines = done.stderr.rstrip("\n").split("\n")
    frames = [x for x in lines if x.lstrip().startswith('File "')]
    # Facts: the exception line, the first frame (the entry point), the last frame.
    return out, [lines[-1], frames[0].strip(), frames[-1].strip()]


def _chained(work: Path) -> Fixture:
    (work / "chain.py").write_text(
        "def read(path):\n    with open(path) as f:\n        return f.read()\n\n"
        "def config():\n    try:\n        return read('/nonexistent/app.toml')\n"
        "    except OSError as exc:\n        raise RuntimeError('cannot load config') from exc\n\n"
        "for i in range(300):\n    print(f'step {i}: ok')\nconfig()\n"
    )
    done = _run([sys.executable, "chain.py"], work)
    excs = re.findall(r"^(\w+Error: .*)$", done.stderr, re.M)
    return done.stdout + done.stderr, excs


def _gcc(work: Path) -> Fixture | None:
    if shutil.which("gcc") is None:
        return None
    body = "".join(f"    int v{i} = {i};\n" for i in range(80))
    (work / "prog.c").write_text(
        "#include <stdio.h>\nstruct point { int x; };\nint f(int x) { return x }\n"
        "int main(void) {\n" + body + "    struct point p;\n    p.z = 3;\n    return undefined_call(p);\n}\n"
    )
    out = _run(["gcc", "-Wall", "-Wextra", "-c", "prog.c", "-o", "/dev/null"], work).stderr
    errors = re.findall(r"^(prog\.c:\d+:\d+: error: .*)$", out, re.M)
    return out, errors


def _mypy(work: Path) -> Fixture:
    body = "".join(f"def f{i}(x: int) -> str:\n    return x + {i}\n\n" for i in range(100))
    body += "a: str = f1(2)\nb = f2('x')\nc = missing_name\n"
    body += "".join(f"d{i}: int = f{i}(1)  # fine\n" for i in range(50))
    (work / "typed.py").write_text(body)
    out = _run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", str(work / ".mc"), "typed.py"], work
    ).stdout
    # Facts: each distinct error message (repeats at other lines are the same fact), the summary.
    errors = sorted(set(re.findall(r"^typed\.py:\d+: (error: .*)$", out, re.M)))
    summary = re.findall(r"^(Found \d+ errors? in \d+ files?)", out, re.M)
    return out, errors + summary


def _ruff(work: Path) -> Fixture:
    lines = [f"import module_{i}" for i in range(60)] + [
        "def f():",
        "    x = 1",
        "    return undefined_value",
    ]
    (work / "lint.py").write_text("\n".join(lines) + "\n")
    out = _run([sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "F", "lint.py"], work).stdout
    # Facts: each distinct rule code, and the total.
    codes = sorted(set(re.findall(r"^([A-Z]+\d+) ", out, re.M)))
    return out, codes + re.findall(r"^(Found \d+ errors?\.)", out, re.M)


def _rustc(work: Path) -> Fixture | None:
    if shutil.which("rustc") is None:
        return None
    body = "".join(f'    let n{i}: i32 = "text {i}";\n' for i in range(40))
    (work / "main.rs").write_text("fn main() {\n" + body + "    missing();\n}\n")
    out = _run(["rustc", "--edition", "2021", "main.rs", "-o", str(work / "main")], work).stderr
    # Facts: each distinct error head, the first error's location, the abort line.
    errors = sorted(set(re.findall(r"^(error\[E\d+\]: .*)$", out, re.M)))
    first = re.findall(r"^ *--> (main\.rs:\d+:\d+)", out, re.M)[:1]
    return out, errors + first + re.findall(r"^(error: aborting due to .*)$", out, re.M)


def _diff(work: Path) -> Fixture:
    repo = work / "repo"
    repo.mkdir()
    _run(["git", "init", "-q"], repo)
    files = {f"src/mod{k}.py": [f"value_{k}_{i} = {i}" for i in range(300)] for k in range(4)}
    for name, lines in files.items():
        (repo / name).parent.mkdir(exist_ok=True)
        (repo / name).write_text("\n".join(lines) + "\n")
    _run(["git", "add", "-A"], repo)
    _run(["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "base"], repo)
    for name, lines in files.items():
        changed = [x.replace(" = ", " = 10 * ") if i % 37 == 5 else x for i, x in enumerate(lines)]
        (repo / name).write_text("\n".join(changed) + "\n")
    out = _run(["git", "diff", "-U10"], repo).stdout
    # Facts: every file header and every added line.
    heads = re.findall(r"^(diff --git .*)$", out, re.M)
    added = re.findall(r"^(\+value_.*)$", out, re.M)
    return out, heads + added


def _find(work: Path) -> Fixture:
    root = work / "project"
    for top in ("docs", "src", "tests", "vendor"):
        for sub in range(12):
            deep = root / top / f"pkg{sub}" / "internal"
            deep.mkdir(parents=True)
            for k in range(8):
                (deep / f"file{k}.py").write_text("")
    out = _run(["sh", "-c", "find . | sort"], root).stdout
    # Facts: the top-level directories.
    return out, [f"./{top}" for top in ("docs", "src", "tests", "vendor")]


def _log(work: Path) -> Fixture:
    path = work / "service.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
    log = logging.getLogger("bench.service")
    log.propagate = False
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    for i in range(1500):
        log.info("request %d served in %d ms", i, i % 97)
        if i % 250 == 249:
            log.warning("cache miss rate high: %d%%", 40 + i // 250)
        if i == 1111:
            log.error("payment gateway returned 502 for order %d", 98765)
        if i % 50 == 0:
            log.debug("heartbeat")
    handler.close()
    log.removeHandler(handler)
    out = path.read_text()
    facts = [re.sub(r"^\S+ \S+ ", "", x) for x in out.split("\n") if " ERROR " in x]
    return out, facts


def _json(work: Path) -> Fixture:
    value = {
        "status": "degraded",
        "region": "eu-west-1",
        "services": [
            {"name": f"svc-{i}", "healthy": i != 17, "latency_ms": i * 3, "tags": ["a", "b", "c"]}
            for i in range(400)
        ],
        "error": {"code": "E_TIMEOUT", "message": "upstream timed out after 30s"},
    }
    out = json.dumps(value, indent=2)
    return out, ['"status": "degraded"', '"region": "eu-west-1"', '"code": "E_TIMEOUT"', '"services": [']


FIXTURES: dict[str, Callable[[Path], Fixture | None]] = {
    "pytest_verbose": lambda w: _pytest(w, True),
    "pytest_quiet": lambda w: _pytest(w, False),
    "unittest": _unittest,
    "traceback_deep": _traceback,
    "traceback_chained": _chained,
    "gcc": _gcc,
    "mypy": _mypy,
    "ruff": _ruff,
    "rustc": _rustc,
    "git_diff": _diff,
    "find": _find,
    "log": _log,
    "json": _json,
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    facts: dict[str, list[str]] = {}
    for name, make in FIXTURES.items():
        with tempfile.TemporaryDirectory() as work:
            made = make(Path(work))
        if made is None:
            print(f"skipped {name}: tool not installed")
            continue
        output, needed = made
        if not needed:
            raise SystemExit(f"{name}: no facts found in the output; the generator is broken")
        (OUT / f"{name}.txt").write_text(output)
        facts[name] = needed
        print(f"{name}: {len(output.splitlines())} lines, {len(needed)} facts")
    (OUT / "facts.json").write_text(json.dumps(facts, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
