"""The examples in public docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re
from types import ModuleType

import pytest

import tokenpilot

# Every module of the package, the public top level included.
SUBMODULES = pkgutil.walk_packages(tokenpilot.__path__, "tokenpilot.")
MODULES = ["tokenpilot", *sorted(m.name for m in SUBMODULES if not m.name.endswith("__main__"))]


def examples(module: ModuleType) -> list[doctest.DocTest]:
    """The examples written in `module`, each run with the module's globals.

    Public names say `__module__ = "tokenpilot"`, so doctest would not look for them where they are
    written: functions are found by their globals, classes by their `class` line in the source.
    """
    finder = doctest.DocTestFinder()
    if module is tokenpilot:
        return [t for t in finder.find(module) if t.name == "tokenpilot"]
    tests = finder.find(module, globs=dict(vars(module)))
    source = inspect.getsource(module)
    for name, obj in vars(module).items():
        if getattr(obj, "__module__", None) != "tokenpilot" or name != getattr(obj, "__name__", None):
            continue
        if (inspect.isfunction(obj) and obj.__globals__ is vars(module)) or (
            inspect.isclass(obj) and re.search(rf"^class {re.escape(name)}\b", source, re.MULTILINE)
        ):
            tests += finder.find(obj, f"{module.__name__}.{name}", module=False, globs=dict(vars(module)))
    return [t for t in tests if t.examples]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_of_every_module_hold(name: str) -> None:
    module = importlib.import_module(name)
    tests = examples(module)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test)
    assert runner.failures == 0
    written = len(re.findall(r"^\s*>>> ", inspect.getsource(module), re.MULTILINE))
    assert sum(len(t.examples) for t in tests) >= written, f"{name} has examples that are never run"


def test_public_names_live_in_one_tier() -> None:
    for name in tokenpilot.__all__:
        obj = getattr(tokenpilot, name)
        if not name.startswith("__") and hasattr(obj, "__module__"):
            assert obj.__module__ == "tokenpilot", name


def test_readme_api_example_holds() -> None:
    import tokenpilot as tp

    assert tp.count_messages([{"role": "user", "content": "hello world"}], model="gpt-4o") == 9
    assert tp.truncate_to_tokens("alpha beta gamma delta", 2, model="gpt-4o") == "alpha beta"
    assert tp.get_model("gpt-4o").cost(input_tokens=10_000, output_tokens=2_000) == pytest.approx(0.045)
