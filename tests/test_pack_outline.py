"""Outlines: signatures with line numbers, docstring heads, imports in brief, `⋮` for elisions."""

from __future__ import annotations

import pytest

from tokenpilot._pack.outline import ELISION, fallback_outline, fit_outline, outline

PYTHON = '''"""Module docs."""
import os
from collections import OrderedDict as OD


class Store(Base):
    """Keeps things.

    More words.
    """

    def get(self, key: str) -> int:
        """Return the value."""
        value = self.data[key]
        return value


def helper(x,
           y=2):
    return x + y
'''


def test_python_outline_has_signatures_line_numbers_and_docstring_heads() -> None:
    lines = outline("store.py", PYTHON).splitlines()
    assert "6│class Store(Base):" in lines
    assert '7│    """Keeps things. …"""' in lines
    assert "12│    def get(self, key: str) -> int:" in lines
    assert '13│        """Return the value."""' in lines
    assert "18│def helper(x, y=2):" in lines


def test_python_outline_summarises_imports_on_one_line() -> None:
    assert "2│imports: os, collections" in outline("store.py", PYTHON).splitlines()


def test_outline_marks_every_elision_and_drops_bodies() -> None:
    text = outline("store.py", PYTHON)
    assert "self.data[key]" not in text
    assert "return x + y" not in text
    lines = text.splitlines()
    assert lines[-1] == ELISION  # the body of helper
    assert lines.count(ELISION) >= 3


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("a.js", "import x from 'y';\nfunction load(url) {\n  return 1;\n}\n", "2│function load(url) {…}"),
        (
            "a.ts",
            "class Repo {\n  find(id: string): Item {\n    return 1;\n  }\n}\n",
            "2│  find(id: string): Item {…}",
        ),
        ("a.tsx", "interface Props {\n  name: string;\n}\n", "1│interface Props {…}"),
        (
            "a.go",
            "package a\n\nfunc (s *S) Run(n int) error {\n\treturn nil\n}\n",
            "3│func (s *S) Run(n int) error {…}",
        ),
        ("a.rs", "pub fn parse(input: &str) -> u32 {\n    1\n}\n", "1│pub fn parse(input: &str) -> u32 {…}"),
        (
            "A.java",
            "class A {\n  int size(List<String> xs) {\n    return 0;\n  }\n}\n",
            "2│  int size(List<String> xs) {…}",
        ),
        (
            "a.c",
            "#include <stdio.h>\nint add(int a, int b) {\n  return a + b;\n}\n",
            "2│int add(int a, int b) {…}",
        ),
        ("a.cpp", "namespace n {\nclass K {\n};\n}\n", "2│class K {…}"),
    ],
)
def test_outline_covers_the_main_languages(path: str, source: str, expected: str) -> None:
    assert expected in outline(path, source).splitlines()


def test_other_text_files_get_head_lines_and_headings() -> None:
    text = "\n".join([f"line {i}" for i in range(1, 20)] + ["## Usage", "more text", "[section]"]) + "\n"
    lines = fallback_outline(text).splitlines()
    assert lines[0] == "1│line 1"
    assert "20│## Usage" in lines
    assert "22│[section]" in lines
    assert "9│line 9" not in lines


def test_fit_outline_keeps_definitions_the_task_names_when_cut() -> None:
    entries = "\n".join(f"{i}│    def method_{i}(self):\n{ELISION}" for i in range(1, 200))
    cut = fit_outline(entries, 60, lambda lines: [len(line) // 4 + 1 for line in lines], names=["method_150"])
    assert "150│    def method_150(self):" in cut
    assert cut.endswith("more definitions not shown)")
    assert sum(len(line) // 4 + 1 for line in cut.split("\n")) <= 80


def test_an_outline_cut_again_counts_every_definition_left_out_of_the_first_cut() -> None:
    text = "\n".join(f"{n}│def f{n}(x):\n⋮" for n in range(1, 40))

    def count(lines: list[str]) -> list[int]:
        return [len(line) // 4 + 1 for line in lines]

    once = fit_outline(text, 60, count)
    twice = fit_outline(once, 30, count)
    shown = sum(1 for line in twice.split("\n") if "│def " in line)
    assert 0 < shown < sum(1 for line in once.split("\n") if "│def " in line)
    assert twice.endswith(f"⋮ ({39 - shown} more definitions not shown)")
