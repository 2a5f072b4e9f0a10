"""Shared fixtures: every test runs with an isolated config home and no tokenpilot env vars."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# Speed targets live in bench/, not in tests: no per-example deadline (it fails on a loaded machine).
settings.register_profile("tokenpilot", deadline=None)
settings.load_profile("tokenpilot")


@pytest.fixture(autouse=True)
def isolated_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("config-home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache-home")))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data-home")))
    for name in list(os.environ):
        if name.startswith("TOKENPILOT_"):
            monkeypatch.delenv(name)
    workdir = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(workdir)  # no tokenpilot.toml of the repository leaks into a test
    yield home
