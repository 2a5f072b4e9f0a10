"""`tp.pack` end to end: what is shown, what is left out, and why."""

from __future__ import annotations

from pathlib import Path

import pytest

import tokenpilot as tp


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    files = {
        "src/billing/invoice.py": "class Invoice:\n    def total(self):\n        '''Sum of lines.'''\n"
        + "        return sum(line.amount for line in self.lines)\n" * 40,
        "src/billing/tax.py": "def vat_rate(country):\n    return 0.2\n",
        "src/users.py": "def create_user(name):\n    return name\n" * 30,
        "tests/test_invoice.py": "def test_total():\n    assert Invoice().total() == 0\n",
        "README.md": "# Billing\n\nInvoices and taxes.\n",
    }
    for relative, text in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "notes.txt").write_bytes("r\xe9sum\xe9\n".encode("latin-1"))
    return tmp_path


def test_the_file_that_defines_what_the_task_names_is_shown_first_in_full(repo: Path) -> None:
    result = tp.pack(repo, "Invoice.total() returns the wrong sum", 3000, "gpt-4o", cache=False)
    assert (result.files[0].path, result.files[0].tier) == ("src/billing/invoice.py", "full")
    assert "return sum(line.amount" in result.text


def test_files_left_out_for_the_budget_are_listed_with_that_reason(repo: Path) -> None:
    result = tp.pack(repo, "Invoice.total() returns the wrong sum", 150, "gpt-4o", cache=False)
    shown = {f.path for f in result.files}
    left_out = {e.path for e in result.excluded if e.reason.startswith("left out: budget")}
    assert shown.isdisjoint(left_out)
    assert len(shown) + len(left_out) == result.stats.files_candidates


def test_include_glob_puts_a_file_first_whatever_the_task(repo: Path) -> None:
    result = tp.pack(repo, "Invoice.total() is wrong", 3000, "gpt-4o", include=["src/users.py"], cache=False)
    assert result.files[0].path == "src/users.py"


def test_exclude_glob_keeps_a_file_out_of_every_tier(repo: Path) -> None:
    result = tp.pack(
        repo, "Invoice.total() is wrong", 3000, "gpt-4o", exclude=["src/billing/**"], cache=False
    )
    assert not any(f.path.startswith("src/billing/") for f in result.files)
    assert "src/billing/invoice.py" not in result.text


def test_invalid_utf8_is_noted_in_the_result(repo: Path) -> None:
    result = tp.pack(repo, "résumé notes", 3000, "gpt-4o", cache=False)
    assert ("notes.txt", "invalid utf-8 (replaced)") in {(n.path, n.reason) for n in result.notes}


def test_missing_root_and_empty_task_are_input_errors(repo: Path) -> None:
    with pytest.raises(tp.InputError, match="no such file"):
        tp.pack(repo / "nope", "task", 1000, cache=False)
    with pytest.raises(tp.InputError, match="empty"):
        tp.pack(repo, "   ", 1000, cache=False)


def test_invalid_pack_config_is_a_config_error_naming_the_key(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "tokenpilot.toml").write_text('[pack]\nsecrets = "shred"\n')
    monkeypatch.chdir(repo)
    with pytest.raises(tp.ConfigError, match="secrets"):
        tp.pack(repo, "task", 1000, cache=False)
