"""Listing a tree as a developer sees it: ignore files, git, symlinks, binaries, bad UTF-8."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tokenpilot._walk import _Ignores, list_files, read_text


def names(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in list_files(root))


def test_plain_directory_honours_nested_ignore_files(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("*.log\nbuild/\n")
    (tmp_path / "src" / "gen").mkdir(parents=True)
    (tmp_path / "src" / ".gitignore").write_text("gen/\n!keep.log\n")
    (tmp_path / "src" / "a.py").write_text("a")
    (tmp_path / "src" / "keep.log").write_text("k")
    (tmp_path / "src" / "gen" / "x.py").write_text("x")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "out.py").write_text("o")
    (tmp_path / "run.log").write_text("r")
    (tmp_path / ".tokenpilotignore").write_text("secret_notes.txt\n")
    (tmp_path / "secret_notes.txt").write_text("s")
    assert names(tmp_path) == [
        ".gitignore",
        ".tokenpilotignore",
        "src/.gitignore",
        "src/a.py",
        "src/keep.log",
    ]


def test_symlink_loops_and_links_out_of_root_are_survived(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "leak.txt").write_text("must not be listed")
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f.txt").write_text("f")
    os.symlink(root / "d", root / "d" / "loop")
    os.symlink(outside, root / "out")
    os.symlink(outside / "leak.txt", root / "leak-link.txt")
    listed = names(root)
    assert listed == ["d/f.txt"]


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_work_tree_lists_tracked_and_untracked_not_ignored(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("ignored.txt\n")
    (tmp_path / "tracked.py").write_text("t")
    (tmp_path / "ignored.txt").write_text("i")
    subprocess.run(["git", "-C", str(tmp_path), "add", "tracked.py", ".gitignore"], check=True)
    (tmp_path / "untracked.py").write_text("u")
    (tmp_path / ".tokenpilotignore").write_text("untracked.py\n")
    assert names(tmp_path) == [".gitignore", ".tokenpilotignore", "tracked.py"]


def test_read_text_reports_binary_and_replaced_utf8(tmp_path: Path) -> None:
    (tmp_path / "b.bin").write_bytes(b"\x89PNG\x00\x01")
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9 ok")
    assert read_text(tmp_path / "b.bin").problem == "binary"
    bad = read_text(tmp_path / "bad.txt")
    assert bad.text == "caf\ufffd ok" and bad.problem == "invalid utf-8 (replaced)"
    assert read_text(tmp_path / "missing").problem is not None


_SEGMENTS = st.sampled_from(["a", "b", "build", "src", "x.py", "y.log", "keep.log", "dir", "n1", ".hidden"])
_PATTERN_PART = st.sampled_from(
    ["a", "b", "*", "**", "*.log", "*.py", "build", "x?", "[ab]", "dir", "n[0-9]"]
)


@st.composite
def _ignore_line(draw: st.DrawFn) -> str:
    parts = draw(st.lists(_PATTERN_PART, min_size=1, max_size=3))
    line = "/".join(parts)
    if draw(st.booleans()):
        line = "/" + line
    if draw(st.booleans()):
        line += "/"
    return ("!" if draw(st.integers(0, 4)) == 0 else "") + line


@settings(max_examples=300, deadline=None)
# an unanchored pattern (`*/` is the regex `/`): pathspec searches, a prefilter that only matched missed it
@example(lines=["!a/a/a", "!*/"], paths=[["a", "a"]], is_dir=False)
@given(
    lines=st.lists(st.one_of(_ignore_line(), st.sampled_from(["", "# c", "\\#x", " "])), max_size=8),
    paths=st.lists(st.lists(_SEGMENTS, min_size=1, max_size=4), min_size=1, max_size=12),
    is_dir=st.booleans(),
)
def test_the_union_prefilter_answers_as_the_spec_does(
    lines: list[str], paths: list[list[str]], is_dir: bool
) -> None:
    import pathspec

    spec = pathspec.GitIgnoreSpec.from_lines(lines)
    ignores = _Ignores(spec, "/root/")
    for parts in paths:
        relative = "/".join(parts) + ("/" if is_dir else "")
        include = spec.check_file(relative).include
        assert ignores.verdict(relative) == (None if include is None else bool(include)), (lines, relative)
