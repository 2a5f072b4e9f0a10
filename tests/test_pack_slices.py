"""The `slices` tier, budgets that grow monotonically, and what a huge budget or a small window does."""

from __future__ import annotations

import email
import re
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tokenpilot as tp
from tokenpilot._pack.assemble import BRIEF_MAX_TOKENS
from tokenpilot._pack.result import TIER_ORDER
from tokenpilot._pack.slices import definitions, task_clues


def _printer_module(methods: int = 120) -> str:
    """A long printer module: many similar methods, one of which the task is about."""
    parts = ['"""A LaTeX printer."""\n', "import re\n", "from math import log\n\n\n", "class LatexPrinter:\n"]
    parts.append('    """Print expressions as LaTeX."""\n\n')
    for n in range(methods):
        parts.append(
            f"    def _print_Node{n}(self, expr):\n"
            f"        args = [self._print(a) for a in expr.args]\n"
            f"        return r'\\\\node{n}{{%s}}' % ', '.join(args)\n\n"
        )
    parts.append(
        "    def _print_Pow(self, expr):\n"
        "        base, exp = expr.as_base_exp()\n"
        "        if exp.is_negative:\n"
        "            return r'\\\\frac{1}{%s}' % self._print(base)\n"
        "        return '%s^{%s}' % (self._print(base), self._print(exp))\n\n"
    )
    parts.append("    def _print(self, expr):\n        return str(expr)\n")
    return "".join(parts)


@pytest.fixture
def printer_repo(tmp_path: Path) -> Path:
    (tmp_path / "printing").mkdir()
    (tmp_path / "printing" / "latex.py").write_text(_printer_module())
    (tmp_path / "printing" / "str.py").write_text("def sstr(expr):\n    return str(expr)\n" * 40)
    (tmp_path / "README.md").write_text("# Printing\n\nPrinters.\n")
    return tmp_path


def test_a_long_file_shows_the_named_method_whole_with_gutter_and_class_line(printer_repo: Path) -> None:
    task = "LatexPrinter._print_Pow drops parentheses around negative exponents in printing/latex.py"
    result = tp.pack(printer_repo, task, 2500, "gpt-4o", cache=False)
    latex = next(f for f in result.files if f.path == "printing/latex.py")
    assert latex.tier == "slices"
    assert "LatexPrinter._print_Pow" in [s.name for s in latex.slices]
    source = _printer_module().splitlines()
    start = next(n for n, line in enumerate(source, 1) if "def _print_Pow" in line)
    for number in range(start, start + 5):
        assert f"{number}│{source[number - 1]}" in result.text
    assert "class LatexPrinter:" in result.text
    assert "⋮" in result.text
    entry = next(f for f in result.report()["files"] if f["path"] == "printing/latex.py")
    shown = next(s for s in entry["slices"] if s["name"] == "LatexPrinter._print_Pow")
    assert (shown["start"], shown["end"]) == (start, start + 4)
    assert result.tokens <= 2500


def test_the_definition_raising_a_quoted_message_is_sliced(tmp_path: Path) -> None:
    body = "".join(f"def helper_{n}(x):\n    return x + {n}\n\n" for n in range(150))
    body += "def check(value):\n    if value < 0:\n"
    body += "        raise ValueError('negative values are not allowed here')\n"
    body += "    return value\n"
    (tmp_path / "checks.py").write_text(body)
    task = 'Calling it with -1 fails: "negative values are not allowed here", though it should not'
    result = tp.pack(tmp_path, task, 1200, "gpt-4o", cache=False)
    checks = result.files[0]
    assert checks.tier == "slices"
    assert [s.name for s in checks.slices][:1] == ["check"]
    assert "raise ValueError('negative values are not allowed here')" in result.text


def test_task_clues_read_traceback_frames_and_exception_messages() -> None:
    task = (
        'Traceback (most recent call last):\n  File "/x/site-packages/pkg/core.py", line 40, in run_all\n'
        "    step()\nKeyError: 'the step was never registered'\n"
    )
    clues = task_clues(task, [], [])
    assert clues.frames == (("/x/site-packages/pkg/core.py", 40, "run_all"),)
    assert "run_all" in clues.names
    assert "'the step was never registered'" in clues.messages


def test_task_clues_read_line_references_in_links_and_path_colon_line() -> None:
    task = (
        "the change at https://github.com/o/r/blob/0123abc/pkg/core.py#L641 broke it; see also pkg/util.py:12"
    )
    clues = task_clues(task, [], [])
    assert ("//github.com/o/r/blob/0123abc/pkg/core.py", 641) in clues.lines
    assert ("pkg/util.py", 12) in clues.lines


def test_the_definition_holding_a_line_the_task_links_to_is_sliced_first(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    body = "".join(f"def helper_{n}(x):\n    return x + {n}\n\n" for n in range(150))
    (tmp_path / "pkg" / "core.py").write_text(body)
    target = next(n for n, line in enumerate(body.splitlines(), 1) if line == "def helper_97(x):") + 1
    task = f"values come out wrong since https://github.com/o/r/blob/0123abc/pkg/core.py#L{target}"
    result = tp.pack(tmp_path, task, 1200, "gpt-4o", cache=False)
    core = next(f for f in result.files if f.path == "pkg/core.py")
    assert core.tier == "slices"
    assert [s.name for s in core.slices][:1] == ["helper_97"]


def test_definitions_include_decorators_and_nested_methods() -> None:
    text = "@dataclass\nclass A:\n    @property\n    def f(self):\n        return 1\n"
    defs = definitions("a.py", text)
    assert [(d.qualname, d.start, d.end) for d in defs] == [("A", 1, 5), ("A.f", 3, 5)]


# --- depth before breadth ----------------------------------------------------------------------------
@pytest.fixture
def email_tree(tmp_path: Path) -> Path:
    """A real package: the standard library's `email`, copied."""
    root = tmp_path / "email"
    shutil.copytree(Path(email.__file__).parent, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_the_first_ranked_file_is_shown_whole_before_more_files_in_part(email_tree: Path) -> None:
    task = "FeedParser drops the epilogue of a multipart message when the closing boundary is missing"
    # room for the whole parser (about 4.7k tokens) and a little more: it beats its slices plus
    # outlines of more files
    budget = int(1.3 * tp.count_tokens((email_tree / "feedparser.py").read_text(), model="gpt-4"))
    result = tp.pack(email_tree, task, budget, "gpt-4", cache=False)
    first = max(result.files, key=lambda f: f.score)
    assert first.path == "feedparser.py"
    assert first.tier == "full"
    assert result.tokens <= budget


# --- monotone in the budget -------------------------------------------------------------------------
_NAMES = st.text(alphabet=string.ascii_lowercase, min_size=3, max_size=8)
_FUNCTION = st.builds(
    lambda name, words, n: (
        f"def {name}(x):\n" + "".join(f"    {w} = x + {n}\n" for w in words) + "    return x\n\n"
    ),
    _NAMES,
    st.lists(_NAMES, min_size=1, max_size=6),
    st.integers(0, 99),
)
_FILE = st.lists(_FUNCTION, min_size=1, max_size=10).map("".join)
_TREE = st.dictionaries(
    st.tuples(st.sampled_from(["", "pkg/", "tests/"]), _NAMES, st.sampled_from([".py", ".py", ".md"])).map(
        "".join
    ),
    _FILE,
    min_size=1,
    max_size=7,
)


def _shown(result: tp.PackResult) -> dict[str, tuple[int, frozenset[str], str, int]]:
    return {
        f.path: (TIER_ORDER.index(f.tier), frozenset(s.name for s in f.slices), f.tier, f.tokens)
        for f in result.files
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=_TREE,
    task_words=st.lists(_NAMES, min_size=1, max_size=4),
    budgets=st.tuples(st.integers(150, 4000), st.integers(1, 4000)),
    fmt=st.sampled_from(["xml", "markdown"]),
)
def test_a_larger_budget_never_shows_a_file_at_a_lower_tier_or_fewer_definitions(
    tmp_path_factory: pytest.TempPathFactory,
    files: dict[str, str],
    task_words: list[str],
    budgets: tuple[int, int],
    fmt: str,
) -> None:
    root = tmp_path_factory.mktemp("tree")
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    task = "fix " + " ".join(task_words)
    small, larger = budgets[0], budgets[0] + budgets[1]
    try:
        before = tp.pack(root, task, small, "gpt-4o", format=fmt, cache=False)
    except tp.BudgetError:
        return
    after = tp.pack(root, task, larger, "gpt-4o", format=fmt, cache=False)
    grown = _shown(after)
    for name, (tier, names, label, cost) in _shown(before).items():
        assert name in grown, f"{name} shown at {small} but not at {larger}"
        assert grown[name][0] >= tier, f"{name}: {label} at {small}, {grown[name][2]} at {larger}"
        if grown[name][2] == "slices" and label == "slices":
            assert names <= grown[name][1]
        if grown[name][2] == "outline" and label == "outline":  # a brief outline, then the outline
            assert grown[name][3] >= cost, (
                f"{name}: outline of {cost} tokens at {small}, {grown[name][3]} at {larger}"
            )


def _widgets_module(functions: int = 40, lines: int = 25) -> str:
    """A module of many similar parsers the task matches, too long to show whole in the budget."""
    parts = ['"""Widget parsing."""\n\nimport re\n\n\n']
    for n in range(functions):
        parts.append(f'def parse_widget_{n}(text):\n    """Parse widget part {n}."""\n')
        parts.extend(f"    text = text.replace('<w{n}:{k}>', ' widget {k} ')\n" for k in range(lines))
        parts.append("    return text.split()\n\n\n")
    return "".join(parts)


def test_budget_a_whole_file_cannot_use_goes_to_more_of_its_definitions(tmp_path: Path) -> None:
    (tmp_path / "widgets.py").write_text(_widgets_module())
    task = "parse_widget fails on empty widget text: the widget parser drops widget parts"
    budget = 3000
    assert tp.count_tokens(_widgets_module(), model="gpt-4o") > budget  # the whole file cannot fit
    result = tp.pack(tmp_path, task, budget, "gpt-4o", cache=False)
    widgets = next(f for f in result.files if f.path == "widgets.py")
    assert widgets.tier == "slices" and len(widgets.slices) >= 3
    # what is left is less than the next size's three more functions
    one = tp.count_tokens("\n".join(_widgets_module().splitlines()[5:33]), model="gpt-4o")
    assert result.tokens > budget - 3 * one, (result.tokens, one)


# --- a huge budget, a small window ---------------------------------------------------------------------
def test_a_huge_budget_fills_files_with_no_match_in_rank_order(printer_repo: Path) -> None:
    (printer_repo / "LICENSE").write_text("MIT License\n")
    result = tp.pack(printer_repo, "LatexPrinter._print_Pow is wrong", "1m", "gpt-4o", cache=False)
    tiers = {f.path: f.tier for f in result.files}
    assert tiers["README.md"] == "full" and tiers["LICENSE"] == "full"
    assert not [e for e in result.excluded if e.reason.startswith("left out")]


def test_a_huge_budget_shows_many_files_with_no_match_whole_not_as_paths(tmp_path: Path) -> None:
    # more files with no match than pack looks at closely by default (50): all fit whole
    for n in range(80):
        (tmp_path / f"doc{n:02d}.md").write_text(f"# Doc {n}\n\nSome text about topic {n}.\n")
    (tmp_path / "latex.py").write_text("def print_pow(x):\n    return x\n")
    result = tp.pack(tmp_path, "print_pow is wrong", "100k", "gpt-4o", cache=False)
    assert {f.tier for f in result.files} == {"full"} and len(result.files) == 81
    smaller = tp.pack(tmp_path, "print_pow is wrong", 900, "gpt-4o", cache=False)
    shown = [f.path for f in smaller.files if f.path.startswith("doc")]
    assert shown == sorted(shown) and 0 < len(shown) < 80  # in rank order (ties: by path)
    reasons = {e.reason for e in smaller.excluded}
    assert reasons == {"left out: budget (no match with the task)"}


def test_files_with_no_match_left_out_say_so(printer_repo: Path) -> None:
    result = tp.pack(printer_repo, "LatexPrinter._print_Pow is wrong", 400, "gpt-4o", cache=False)
    reasons = {e.path: e.reason for e in result.excluded}
    assert reasons.get("README.md") in ("left out: budget (no match with the task)", None)
    assert any(r == "left out: budget (no match with the task)" for r in reasons.values())


def test_a_budget_over_the_models_window_warns_with_the_window(printer_repo: Path) -> None:
    result = tp.pack(printer_repo, "LatexPrinter._print_Pow is wrong", "200k", "gpt-4", cache=False)
    assert result.warnings == ("the budget of 200,000 tokens is over gpt-4's context window of 8,192",)
    assert result.report()["warnings"] == list(result.warnings)
    command = "from tokenpilot.cli import main; main()"
    arguments = ["pack", str(printer_repo), "--task", "fix _print_Pow", "-b", "200k", "--model", "gpt-4"]
    run = subprocess.run(
        [sys.executable, "-c", command, *arguments, "--no-cache", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert len(re.findall(r"warning: .*context window of 8,192", run.stderr)) == 1, run.stderr
    assert run.stderr.count("context window") == 1, run.stderr


# --- brief outlines: breadth for a fraction of an outline's cost ------------------------------------------
def _handlers_module(k: int, body_lines: int = 1) -> str:
    """A module of many small handlers, one of which (`parse_widget`) the task names."""
    parts = [f'"""Handlers, part {k}."""\n\n']
    parts.extend(f"def handler_{k}_{j}(event, context):\n    return event\n\n\n" for j in range(60))
    parts.append("def parse_widget(text):\n")
    parts.extend(f"    text = text.replace('<{n}>', ' {n} ')\n" for n in range(body_lines - 1))
    parts.append("    return text.split()\n")
    return "".join(parts)


def test_files_past_the_outlines_that_fit_show_a_brief_outline_with_the_named_definition(
    tmp_path: Path,
) -> None:
    for k in range(12):
        (tmp_path / f"handlers_{k}.py").write_text(_handlers_module(k))
    task = "parse_widget fails on empty widget text in the handlers"
    result = tp.pack(tmp_path, task, 2500, "gpt-4o", cache=False)
    outlined = [f for f in result.files if f.tier == "outline"]
    brief = [f for f in outlined if f.tokens <= BRIEF_MAX_TOKENS + 40]
    assert brief, [(f.path, f.tokens) for f in outlined]
    # without brief outlines the same budget shows 7 files beyond a path (slices, then paths)
    assert len([f for f in result.files if f.tier != "path"]) >= 10
    for f in brief:
        block = result.text.split(f'<file path="{f.path}" tier="outline">', 1)[1].split("</file>", 1)[0]
        assert "def parse_widget(text):" in block
        assert block.count("def handler_") < 60


def test_a_file_shown_as_a_brief_outline_only_grows_with_the_budget(tmp_path: Path) -> None:
    for k in range(12):
        (tmp_path / f"handlers_{k}.py").write_text(_handlers_module(k))
    task = "parse_widget fails on empty widget text in the handlers"
    levels: dict[str, list[tuple[int, int]]] = {}
    for budget in (1200, 2500, 4000, 8000, 30000):
        result = tp.pack(tmp_path, task, budget, "gpt-4o", cache=False)
        for f in result.files:
            levels.setdefault(f.path, []).append((TIER_ORDER.index(f.tier), f.tokens))
    briefs = {
        p
        for p, seen in levels.items()
        if any(
            tier == TIER_ORDER.index("outline") and tokens <= BRIEF_MAX_TOKENS + 40 for tier, tokens in seen
        )
    }
    assert briefs
    assert any(levels[p][-1][0] > TIER_ORDER.index("outline") for p in briefs)  # shown richer later
    for path, seen in levels.items():
        assert seen == sorted(seen), f"{path}: (tier, tokens) {seen} as the budget grows"


def test_a_file_with_slices_goes_from_its_brief_outline_to_slices_or_whole_never_the_outline(
    tmp_path: Path,
) -> None:
    for k in range(6):  # a long named definition: its slice costs far more than the outline
        (tmp_path / f"handlers_{k}.py").write_text(_handlers_module(k, body_lines=80))
    task = "parse_widget fails on empty widget text in the handlers"
    seen: list[tuple[str, int]] = []
    for budget in range(400, 4000, 150):
        result = tp.pack(tmp_path, task, budget, "gpt-4o", cache=False)
        seen.extend((f.tier, f.tokens) for f in result.files if f.path == "handlers_0.py")
    assert {"outline", "full"} <= {tier for tier, _ in seen}, seen
    assert all(tokens <= BRIEF_MAX_TOKENS + 40 for tier, tokens in seen if tier == "outline"), seen


def _registry_module() -> str:
    """A module with a long class (a registry of handlers) and as much code again around it."""
    parts = ['"""Handlers."""\n\nimport re\n\n\n']
    parts.extend(
        f"def helper_{n}(text):\n"
        + "".join(f"    text = text.strip('{k}')\n" for k in range(12))
        + "    return text\n\n\n"
        for n in range(30)
    )
    parts.append('class HandlerRegistry:\n    """Handlers by kind."""\n\n    kinds = ("json", "yaml")\n\n')
    for n in range(40):
        parts.append(
            f"    def handle_kind_{n}(self, payload):\n"
            f"        data = self.decode(payload)\n"
            f"        return self.registry_lookup({n}, data)\n\n"
        )
    parts.append("    def registry_lookup(self, n, data):\n        return (n, data)\n")
    return "".join(parts)


def test_a_long_class_the_task_is_about_can_be_shown_whole(tmp_path: Path) -> None:
    source = _registry_module()
    (tmp_path / "handlers.py").write_text(source)
    lines = source.splitlines()
    start = next(n for n, line in enumerate(lines, 1) if line.startswith("class HandlerRegistry"))
    assert len(lines) - start + 1 >= 150  # long: its methods are ranked, not the class
    task = "HandlerRegistry kinds should include toml: the handler registry lookup ignores the kind"
    whole_file = tp.count_tokens(source, model="gpt-4o")
    whole_class = tp.count_tokens("\n".join(lines[start - 1 :]), model="gpt-4o")
    budget = (whole_file + whole_class) // 2 + 400
    result = tp.pack(tmp_path, task, budget, "gpt-4o", cache=False)
    handlers = next(f for f in result.files if f.path == "handlers.py")
    assert handlers.tier == "slices"
    assert ("HandlerRegistry", start, len(lines)) in [(s.name, s.start, s.end) for s in handlers.slices]
    for number in range(start, len(lines) + 1):  # every line of it, class-level lines included
        assert f"{number}│{lines[number - 1]}" in result.text
    smaller = tp.pack(tmp_path, task, whole_class // 2, "gpt-4o", cache=False)
    part = next(f for f in smaller.files if f.path == "handlers.py")
    assert part.tier == "slices" and "HandlerRegistry" not in [s.name for s in part.slices]
    # monotone: what the smaller budget shows of the class is inside what the larger one shows
    assert all(start <= s.start and s.end <= len(lines) for s in part.slices if s.name.startswith("Handler"))


def test_overloads_and_their_implementation_are_sliced_together_in_one_place(tmp_path: Path) -> None:
    body = "from typing import overload\n\n\n"
    body += "".join(f"def helper_{n}(x):\n    return x + {n}\n\n" for n in range(150))
    for kind in ("int", "str", "bytes", "float"):
        body += f"@overload\ndef polyval(coord: {kind}, degree: int) -> {kind}: ...\n\n"
    body += "def polyval(coord, degree):\n    return _ensure_numeric(coord) ** degree\n\n"
    body += "def _ensure_numeric(data):\n    return float(data)  # timedelta coordinates lose their unit\n"
    (tmp_path / "computation.py").write_text(body)
    lines = body.splitlines()
    stubs_and_implementation = [
        n for n, line in enumerate(lines, 1) if line in ("@overload", "def polyval(coord, degree):")
    ]
    task = "polyval with timedelta coordinates gives wrong results: _ensure_numeric drops the unit"
    result = tp.pack(tmp_path, task, 700, "gpt-4o", cache=False)
    packed = result.files[0]
    assert packed.tier == "slices"
    # all four stubs and the implementation are shown, and they take one place in the ranking:
    # the other definition the task names is in the same small slice
    assert [s.start for s in packed.slices if s.name == "polyval"] == stubs_and_implementation
    assert "_ensure_numeric" in [s.name for s in packed.slices]
    assert len(packed.slices) == 6


def test_a_dispatchers_registrations_are_ranked_and_shown_each_on_its_own(tmp_path: Path) -> None:
    # sympy's sets/handlers: dozens of `@dispatch(A, B) def intersection_sets`, one implementation
    # each; joining them as namesakes made the smallest slice the whole file
    body = "from sympy.multipledispatch import dispatch\n\n\n"
    kinds = [f"Kind{n}" for n in range(30)] + ["ImageSet"]
    for kind in kinds:
        body += f"@dispatch({kind}, Set)\ndef intersection_sets(a, b):\n"
        body += "".join(f"    step_{k} = a.combine(b, {k!r})\n" for k in range(12))
        body += "    return None\n\n"
    body += "@dispatch(ImageSet, Reals)\ndef intersection_sets(self, other):\n"
    body += "    # imaginary parts of a lambda over the reals are dropped\n"
    body += "    return self.lamda.expr.as_real_imag()\n"
    (tmp_path / "intersection.py").write_text(body)
    (tmp_path / "other.py").write_text("def unrelated():\n    return 1\n" * 40)
    task = "intersection_sets(ImageSet, Reals) is wrong: imaginary parts of the lambda expr are dropped"
    full = tp.pack(tmp_path, task, 100_000, "gpt-4o", cache=False)
    whole = next(f for f in full.files if f.path == "intersection.py").tokens
    result = tp.pack(tmp_path, task, whole // 3, "gpt-4o", cache=False)
    packed = next(f for f in result.files if f.path == "intersection.py")
    assert packed.tier == "slices"
    last = body.splitlines().index("@dispatch(ImageSet, Reals)") + 1
    assert last in [s.start for s in packed.slices]
    assert len(packed.slices) < len(kinds)
