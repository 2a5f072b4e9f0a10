"""The examples in the plan modules' docstrings are true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "tokenpilot._plan._cost",
    "tokenpilot._plan._max_tokens",
    "tokenpilot._plan._output_mode",
    "tokenpilot._plan._plan",
    "tokenpilot._plan._ratelimit",
    "tokenpilot._plan._request",
    "tokenpilot._plan._response",
    "tokenpilot._plan._routing",
    "tokenpilot._plan._task",
    "tokenpilot._plan._tiers",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
