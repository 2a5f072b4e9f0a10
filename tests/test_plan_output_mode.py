"""Output mode: whole files vs structured edits, from file sizes and the number of files."""

from __future__ import annotations

from pathlib import Path

import tokenpilot as tp
from tokenpilot._plan import FileToWrite, choose_output_mode


def test_new_files_are_written_whole() -> None:
    choice = choose_output_mode([FileToWrite(f"pkg/m{i}.py", new_tokens=400) for i in range(5)])
    assert choice.mode == "full_file"
    # 5 × (400 + 12) whole, 5 × (400 + 24) with a structured wrapper around each new file
    assert choice.estimates == {"full_file": 2060, "structured_edit": 2120}


def test_small_edit_of_a_large_file_is_a_structured_edit() -> None:
    choice = choose_output_mode([FileToWrite("big.py", current_tokens=5000)])
    assert choice.mode == "structured_edit"
    # changed region ⌈5000 × 0.1⌉ = 500, sent as SEARCH and REPLACE: 2 × 500 + 24
    assert choice.estimates == {"full_file": 5012, "structured_edit": 1024}


def test_edit_of_a_tiny_file_is_rewritten_whole() -> None:
    choice = choose_output_mode([FileToWrite("tiny.py", current_tokens=50)])
    # changed region max(40, ⌈5⌉) = 40: 2 × 40 + 24 = 104 > 50 + 12
    assert choice.mode == "full_file"
    assert choice.estimates == {"full_file": 62, "structured_edit": 104}


def test_edit_fraction_per_file_overrides_the_default() -> None:
    whole_rewrite = choose_output_mode([FileToWrite("a.py", current_tokens=1000, edit_fraction=1.0)])
    assert whole_rewrite.mode == "full_file"


def test_plan_call_measures_files_on_disk_and_raises_max_tokens_to_fit_them() -> None:
    Path("existing.py").write_text("x = 1\n" * 3000, encoding="utf-8")
    plan = tp.plan_call(
        "Add logging to existing.py and create helpers.py",
        "gpt-4o",
        task_type="tool_call",
        complexity="low",
        files_to_write=["existing.py", "helpers.py"],
    )
    size = tp.count_tokens("x = 1\n" * 3000, model="gpt-4o")
    assert plan.output is not None
    assert [(f.path, f.action) for f in plan.output.files] == [
        ("existing.py", "edit"),
        ("helpers.py", "create"),
    ]
    assert plan.output.files[0].full_file == size + 12
    assert plan.output_mode == "structured_edit"
    # the tool_call table gives 300; the files need ≈ min(estimates) tokens, × 1.2
    needed = int(min(plan.output.estimates.values()) * 1.2)
    assert plan.max_tokens == needed > 300
    assert plan.max_tokens_source == "output_estimate"


def test_a_directory_is_not_a_file_to_write() -> None:
    Path("pkg").mkdir()
    try:
        tp.plan_call("Create it", "gpt-4o", files_to_write=["pkg"])
    except tp.InputError as exc:
        assert "is a directory" in str(exc)
    else:
        raise AssertionError("a directory was accepted as a file to write")
