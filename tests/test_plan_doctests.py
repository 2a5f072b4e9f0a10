"""The examples in the plan modules' docstrings are true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "tokenpilot.plan._cost",
    "tokenpilot.plan._max_tokens",
    "tokenpilot.plan._output_mode",
    "tokenpilot.plan._plan",
    "tokenpilot.plan._ratelimit",
    "tokenpilot.plan._request",
    "tokenpilot.plan._response",
    "tokenpilot.plan._routing",
    "tokenpilot.plan._task",
    "tokenpilot.plan._tiers",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
