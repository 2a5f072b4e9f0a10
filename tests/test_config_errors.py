"""Every feature's bad configuration names the file and the key (one rule, every table)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import tokenpilot as tp


def _pack(tmp: Path) -> object:
    (tmp / "a.py").write_text("x = 1\n")
    return tp.pack(tmp, "task", 2_000)


def _compact(tmp: Path) -> object:
    return tp.compact([{"role": "user", "content": "hi"}], budget=1_000)


def _ledger(tmp: Path) -> object:
    return tp.open_ledger(f"sqlite:///{tmp / 'l.db'}")


def _trim(tmp: Path) -> object:
    return tp.trim_output("x\n" * 5_000, None)


def _plan(tmp: Path) -> object:
    return tp.plan_call("Explain this module")


CASES: list[tuple[str, str, Callable[[Path], object]]] = [
    ("[pack]\nmax_file_bytes = -1\n", "pack.max_file_bytes", _pack),
    ('[compact]\ntrigger = "soon"\n', "trigger", _compact),
    ("[ledger]\nreservation_ttl = 0\n", "ledger.reservation_ttl", _ledger),
    ("[ledger]\ncolour = 1\n", "ledger.colour", _ledger),
    ("[trim]\nbudget = -5\n", "trim.budget", _trim),
    ("[plan]\nlearn_percentile = 250\n", "plan.learn_percentile", _plan),
]


@pytest.mark.parametrize(("toml", "key", "use"), CASES, ids=[c[1] for c in CASES])
def test_bad_feature_config_names_file_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, key: str, use: Callable[[Path], object]
) -> None:
    config = tmp_path / "tokenpilot.toml"
    config.write_text(toml)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(tp.ConfigError) as caught:
        use(tmp_path)
    assert str(config) in str(caught.value)
    assert key in str(caught.value)
