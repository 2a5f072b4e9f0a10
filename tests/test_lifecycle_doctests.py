"""The examples in the lifecycle modules' docstrings are true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "tokenpilot._handoff.phase_handoff",
    "tokenpilot._handoff.reset",
    "tokenpilot._handoff.subagent_context",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
