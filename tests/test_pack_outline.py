"""Outlines: signatures with line numbers, docstring heads, imports in brief, `⋮` for elisions."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tokenpilot as tp
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


def _fit_counting_every_line(
    text: str, max_tokens: int, count_lines: Callable[[list[str]], list[int]], names: Sequence[str] = ()
) -> str:
    """fit_outline as it was before it counted lazily: every line counted up front (the reference)."""
    if count_lines([text])[0] <= max_tokens:
        return text
    lines = text.split("\n")
    earlier = re.match(r"^⋮ \((\d+) more definitions not shown\)$", lines[-1])
    if earlier:
        lines.pop()
    entries = [(n, m) for n, line in enumerate(lines) if (m := re.match(r"^(\d+)│(.*)$", line))]
    if not entries:
        return text
    costs = count_lines([line + "\n" for line in lines])
    wanted = [name for name in names if len(name) >= 3]
    groups: list[tuple[str, list[int]]] = []
    for index, match in entries:
        if groups and match.group(2).lstrip().startswith(('"', "'", 'r"', "r'", 'u"', "u'")):
            groups[-1][1].append(index)
        else:
            groups.append((match.group(2), [index]))

    def priority(group: tuple[str, list[int]]) -> int:
        if any(name in group[0] for name in wanted):
            return 0
        return 1 if not group[0][:1].isspace() else 2

    kept: set[int] = set()
    kept_groups = used = 0
    for group in sorted(groups, key=lambda g: (priority(g), g[1][0])):
        cost = sum(costs[index] + 1 for index in group[1])
        if used + cost + 1 > max_tokens:
            continue
        kept.update(group[1])
        kept_groups += 1
        used += cost
    out: list[str] = []
    for index, line in enumerate(lines):
        if index in kept:
            out.append(line)
        elif not out or out[-1] != ELISION:
            out.append(ELISION)
    left_out = len(groups) - kept_groups + (int(earlier.group(1)) if earlier else 0)
    if left_out:
        if out and out[-1] == ELISION:
            out.pop()
        out.append(f"{ELISION} ({left_out} more definitions not shown)")
    return "\n".join(out)


_NAMES = ("alpha", "beta_gamma", "Delta", "ep")
_SIGNATURE = st.builds(
    lambda indent, kind, name, args: f"{'    ' * indent}{kind} {name}({args}):",
    st.integers(0, 2),
    st.sampled_from(("def", "class", "async def")),
    st.sampled_from((*_NAMES, "other", "x")),
    st.text(alphabet="abcxyz_, =*0123456789é", max_size=30),
)
_DOCSTRING = st.builds(
    lambda q, t: f"    {q}{t}{q}", st.sampled_from(('"""', "'", 'r"')), st.text(max_size=20)
)


@settings(max_examples=300, deadline=None)
@given(
    entries=st.lists(
        st.one_of(_SIGNATURE, _DOCSTRING, st.sampled_from(("", "x", "é", "  y", *_NAMES))),
        min_size=1,
        max_size=60,
    ),
    gaps=st.lists(st.booleans(), min_size=60, max_size=60),
    cap=st.integers(1, 300),
    names=st.lists(st.sampled_from(_NAMES), max_size=3),
    cut_again=st.booleans(),
)
def test_fit_outline_counting_only_lines_that_may_fit_gives_the_outline_counting_every_line_gives(
    entries: list[str], gaps: list[bool], cap: int, names: list[str], cut_again: bool
) -> None:
    tokenizer = tp.tokenizer_for("gpt-4o")

    def count(lines: list[str]) -> list[int]:
        return [tokenizer.count(line) for line in lines]

    lines: list[str] = []
    number = 1
    for entry, gap in zip(entries, gaps, strict=False):
        if gap:
            lines.append(ELISION)
            number += 3
        lines.append(f"{number}│{entry}")
        number += 1
    text = "\n".join(lines)
    if cut_again:  # a brief outline is cut from a fitted one, which may end in its note
        text = _fit_counting_every_line(text, max(cap * 2, 40), count, names)
    assert fit_outline(text, cap, count, names) == _fit_counting_every_line(text, cap, count, names)
