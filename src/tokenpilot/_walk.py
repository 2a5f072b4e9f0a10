"""Finding the files of a tree the way a developer sees it, and reading them as text.

A git work tree lists its tracked and untracked-but-not-ignored files (`git ls-files`); any other
directory is walked honouring every `.gitignore` and `.tokenpilotignore` (pathspec, gitwildmatch).
Symlinks are never followed out of the root, and loops are survived.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pathspec

IGNORE_FILES = (".gitignore", ".tokenpilotignore")
ALWAYS_SKIPPED_DIRS = frozenset({".git", ".hg", ".svn"})
_BINARY_SNIFF = 8192


@dataclass(frozen=True, slots=True)
class TextFile:
    """A file read as text, or the reason it could not be (`text` is None then)."""

    path: Path
    text: str | None
    problem: str | None = None  # "binary", "unreadable: …", or "invalid utf-8 (replaced)"


def _git_files(root: Path) -> list[str] | None:
    if shutil.which("git") is None:
        return None
    try:
        # one process: outside a work tree (no repository, a bare one, inside .git) ls-files fails
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            timeout=120,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    files = []
    extra_ignores = _load_spec(root, ".tokenpilotignore")
    # os.path.join(root, name) for a relative name, as one concatenation (joining costs more than the lstat)
    text_root = os.fspath(root)
    prefix = text_root if text_root.endswith(os.sep) else text_root + os.sep
    for name in sorted(set(listed.stdout.decode("utf-8", "surrogateescape").split("\0"))):
        if not name:
            continue
        if extra_ignores is not None and extra_ignores.match_file(name):
            continue
        # ls-files lists deleted-but-tracked files and symlinks too; keep real files in the root.
        # Git never lists a path beyond a symlinked directory, so only a symlink itself can lead
        # out of the root: resolving every path (slow on large trees) is not needed. One lstat
        # tells a regular file from a symlink (is_file + is_symlink would be two).
        joined = prefix + name
        try:
            mode = os.lstat(joined).st_mode
        except (OSError, ValueError):
            continue
        if stat.S_ISREG(mode):
            files.append(joined)
        elif stat.S_ISLNK(mode):
            path = root / name
            if path.is_file() and _inside(path, root):
                files.append(str(path))
    return files


def _load_spec(directory: Path, filename: str) -> pathspec.GitIgnoreSpec | None:
    ignore_file = directory / filename
    try:
        lines = ignore_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    import pathspec  # only when there is an ignore file: the import costs more than a small pack

    return pathspec.GitIgnoreSpec.from_lines(lines)


_NAMED_GROUP = re.compile(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>")


class _Ignores:
    """One ignore file's patterns, relative to its directory (`base`, ending in a separator).

    `check_file` tries every pattern in Python; most paths of a tree match none. One regex, the
    union of the patterns, answers that first, so a spec is only consulted for paths it matches.
    """

    __slots__ = ("_any", "base", "spec")

    def __init__(self, spec: pathspec.GitIgnoreSpec, base: str) -> None:
        self.spec = spec
        self.base = base
        self._any = _union_pattern(spec)

    def verdict(self, relative: str) -> bool | None:
        """True: ignored, False: re-included (`!pattern`), None: no pattern matches."""
        if self._any is not None and self._any.search(relative) is None:
            return None
        include = self.spec.check_file(relative).include
        return None if include is None else bool(include)


def _union_pattern(spec: pathspec.GitIgnoreSpec) -> re.Pattern[str] | None:
    """A regex that finds (`search`, as pathspec does) what some pattern of `spec` finds (None: not built)."""
    sources = []
    for pattern in spec.patterns:
        if getattr(pattern, "include", None) is None:
            continue
        regex = getattr(pattern, "regex", None)
        if not isinstance(regex, re.Pattern) or not isinstance(regex.pattern, str):
            return None
        # the union cannot repeat a group name; the groups only mark directory matches
        sources.append("(?:" + _NAMED_GROUP.sub("(?:", regex.pattern) + ")")
    if not sources:
        return re.compile(r"(?!)")
    try:
        return re.compile("|".join(sources))
    except re.error:
        return None


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except (OSError, ValueError, RuntimeError):
        return False
    return True


def _walked_files(root: Path) -> list[str]:
    """Walk honouring nested ignore files; symlinks followed only while they stay in the root."""
    real_root = root.resolve()
    found: list[str] = []
    seen_dirs: set[str] = set()
    # (directory, the ignore files that apply in it)
    stack: list[tuple[str, list[_Ignores]]] = [(os.fspath(root), [])]
    while stack:
        directory, specs = stack.pop()
        try:
            real = os.path.realpath(directory, strict=True)
        except (OSError, RuntimeError):
            continue
        if real in seen_dirs:  # a symlink loop or a second link to the same directory
            continue
        seen_dirs.add(real)
        specs = list(specs)
        for filename in IGNORE_FILES:
            spec = _load_spec(Path(directory), filename)
            if spec is not None:
                specs.append(_Ignores(spec, os.path.join(directory, "")))
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                continue
            if is_dir and entry.name in ALWAYS_SKIPPED_DIRS:
                continue
            if specs and _ignored(entry.path, is_dir, specs):
                continue
            if entry.is_symlink() and not _inside(Path(entry.path), real_root):
                continue
            if is_dir:
                subdirs.append((entry.path, specs))
            elif entry.is_file():
                found.append(entry.path)
        stack.extend(reversed(subdirs))
    return sorted(found, key=lambda name: name.split(os.sep))  # in Path order, part by part


def _ignored(path: str, is_dir: bool, specs: list[_Ignores]) -> bool:
    ignored = False
    for spec in specs:
        relative = path[len(spec.base) :]
        if os.sep != "/":
            relative = relative.replace(os.sep, "/")
        # pathspec handles negation inside one file; later (deeper) files override earlier ones.
        verdict = spec.verdict(relative + "/" if is_dir else relative)
        if verdict is not None:
            ignored = verdict
    return ignored


def list_files(root: Path) -> list[Path]:
    """Files under `root` that are not ignored, sorted, as paths under `root`."""
    return [Path(name) for name in list_file_names(root)]


def list_file_names(root: Path) -> list[str]:
    """`list_files` as strings: on a large tree, making a Path of each costs more than listing it."""
    if root.is_file():
        return [str(root)]
    from_git = _git_files(root)
    return from_git if from_git is not None else _walked_files(root)


def read_text(path: Path, max_bytes: int | None = None) -> TextFile:
    """Read a file as UTF-8 text; binaries (a NUL byte in the first 8 KiB) are refused."""
    try:
        with path.open("rb") as handle:
            data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    except OSError as exc:
        return TextFile(path, None, f"unreadable: {exc.strerror or exc}")
    if max_bytes is not None and len(data) > max_bytes:
        return TextFile(path, None, f"over {max_bytes:,} bytes")
    if b"\0" in data[:_BINARY_SNIFF]:
        return TextFile(path, None, "binary")
    try:
        return TextFile(path, data.decode("utf-8"))
    except UnicodeDecodeError:
        return TextFile(path, data.decode("utf-8", errors="replace"), "invalid utf-8 (replaced)")


def iter_text_files(roots: list[Path]) -> Iterator[TextFile]:
    """Every file under the given roots, read as text (or with the reason it is not text)."""
    for root in roots:
        for path in list_files(root):
            yield read_text(path)
