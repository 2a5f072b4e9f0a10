"""The hard budget: the packed text, counted exactly, is never over the budget."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tokenpilot as tp
from tokenpilot._pack import parse_budget

_NAMES = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=10)
_LINES = st.lists(
    st.one_of(
        st.builds(lambda n: f"def {n}(x):\n    return x + 1\n", _NAMES),
        st.builds(lambda n: f"class {n.title()}:\n    '''Docs of {n}.'''\n", _NAMES),
        st.text(alphabet=string.printable + "é→✓", max_size=80),
    ),
    max_size=12,
)
_TREES = st.dictionaries(
    st.tuples(
        st.sampled_from(["", "pkg/", "pkg/sub/", "tests/"]),
        _NAMES,
        st.sampled_from([".py", ".md", ".js", ".txt"]),
    ).map(lambda t: f"{t[0]}{t[1]}{t[2]}"),
    _LINES.map("".join),
    min_size=0,
    max_size=8,
)

_FRAME_OVERHEAD_BOUND = 120


def _write_tree(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=_TREES,
    budget=st.one_of(st.integers(1, 120), st.integers(120, 3000)),
    fmt=st.sampled_from(["xml", "markdown", "plain"]),
    model=st.sampled_from(["gpt-4", "gpt-4o", "claude-sonnet-4"]),
)
def test_pack_never_exceeds_budget_over_random_trees_and_budgets(
    tmp_path_factory: pytest.TempPathFactory, files: dict[str, str], budget: int, fmt: str, model: str
) -> None:
    root = tmp_path_factory.mktemp("tree")
    _write_tree(root, files)
    task = "fix the parse function in pkg"
    tokenizer = tp.tokenizer_for(model)
    try:
        result = tp.pack(root, task, budget, model, format=fmt, cache=False)
    except tp.BudgetError as exc:
        # only allowed when the frame (header, task, wrappers) alone does not fit
        needed = int(re.search(r"need ([\d,]+) tokens", str(exc)).group(1).replace(",", ""))  # type: ignore[union-attr]
        assert tokenizer.safe_budget(budget) < needed <= tokenizer.count(task) + _FRAME_OVERHEAD_BOUND
        return
    assert result.tokens == tokenizer.count(result.text)
    assert result.tokens <= tokenizer.safe_budget(budget) <= budget
    assert task in result.text


def test_pack_raises_budget_error_when_the_task_alone_does_not_fit(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    with pytest.raises(tp.BudgetError, match="over the budget"):
        tp.pack(tmp_path, "a long task " * 50, 20, "gpt-4", cache=False)


def test_pack_is_deterministic_same_inputs_same_bytes(tmp_path: Path) -> None:
    _write_tree(tmp_path, {f"m{i}.py": f"def f{i}(x):\n    return {i}\n" * (i + 1) for i in range(20)})
    first = tp.pack(tmp_path, "what does f3 return", 400, "gpt-4", cache=False)
    second = tp.pack(tmp_path, "what does f3 return", 400, "gpt-4", cache=False)
    assert first.text == second.text
    assert first.files == second.files


def test_pack_reports_tokens_exactly_in_header(tmp_path: Path) -> None:
    _write_tree(tmp_path, {"a.py": "def alpha():\n    pass\n"})
    result = tp.pack(tmp_path, "alpha", 500, "gpt-4", cache=False)
    assert f'tokens="{result.tokens}"' in result.text


def test_every_shown_file_appears_once_in_the_tree(tmp_path: Path) -> None:
    _write_tree(tmp_path, {f"pkg/m{i}.py": f"def g{i}():\n    return {i}\n" for i in range(6)})
    result = tp.pack(tmp_path, "g2", 2000, "gpt-4", cache=False)
    tree = result.text.split("<tree>\n", 1)[1].split("</tree>", 1)[0]
    assert sorted(line for line in tree.splitlines() if not line.startswith("(")) == sorted(
        f.path for f in result.files
    )


@pytest.mark.parametrize(
    ("text", "expected"), [("20000", 20000), ("20k", 20000), ("1.5m", 1_500_000), ("2_000", 2000)]
)
def test_parse_budget_accepts_plain_k_and_m_forms(text: str, expected: int) -> None:
    assert parse_budget(text) == expected


@pytest.mark.parametrize("text", ["", "k", "-5", "0", "1.5", "abc", "nan"])
def test_parse_budget_rejects_nonsense_with_input_error(text: str) -> None:
    with pytest.raises(tp.InputError):
        parse_budget(text)
