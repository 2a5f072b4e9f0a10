"""The examples in the account's and budget rules' docstrings run and show what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "tokenpilot._budget.periods",
    "tokenpilot._budget.budgets",
    "tokenpilot._budget.refusal",
    "tokenpilot._budget.scopes",
    "tokenpilot._account.pricing",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
