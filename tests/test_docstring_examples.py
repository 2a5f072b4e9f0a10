"""The examples in public docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

PACK_MODULES = [
    "_api",
    "assemble",
    "examine",
    "features",
    "lexical",
    "outline",
    "paths",
    "rank",
    "render",
    "result",
    "select",
    "settings",
    "slices",
    "terms",
]
MODULES = [
    "tokenpilot._tokens._count",
    "tokenpilot._models._registry",
    *(f"tokenpilot._pack.{name}" for name in PACK_MODULES),
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 or name.startswith("tokenpilot._pack.")
    assert result.failed == 0


def test_readme_api_example_holds() -> None:
    import tokenpilot as tp

    assert tp.count_messages([{"role": "user", "content": "hello world"}], model="gpt-4o") == 9
    assert tp.truncate_to_tokens("alpha beta gamma delta", 2, model="gpt-4o") == "alpha beta"
    assert tp.get_model("gpt-4o").cost(input_tokens=10_000, output_tokens=2_000) == pytest.approx(0.045)
