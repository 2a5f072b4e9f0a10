"""Output mode: rewrite whole files, or send structured edits (search/replace blocks), by estimate.

Per file, in tokens of the target model (documented in docs/plan.md):

- a file to create (N tokens; `new_file_tokens` when unknown) costs N + 12 as a whole file
  (path line and fence) and N + 24 as a structured edit (an empty SEARCH block around it): a
  structured wrapper only adds overhead to new files;
- a file to edit (S tokens now) costs S + 12 rewritten whole, and 2·C + 24 as a structured edit,
  where C = max(40, ⌈S × edit_fraction⌉) capped at S is the changed region, sent once as SEARCH
  and once as REPLACE.

The mode with the smaller total wins; a tie goes to whole files (simpler for the model to get right).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tokenpilot._exceptions import InputError
from tokenpilot._tokens import Tokenizer

FULL_FILE_OVERHEAD = 12
STRUCTURED_OVERHEAD = 24
MIN_CHANGED_TOKENS = 40
MODES = ("full_file", "structured_edit")


@dataclass(frozen=True, slots=True)
class FileToWrite:
    """A file the call will write: its current size in tokens if it exists (None: a new file)."""

    path: str
    current_tokens: int | None = None
    new_tokens: int | None = None  # expected size of a new file, when known
    edit_fraction: float | None = None  # share of an existing file the edit rewrites, when known

    @property
    def exists(self) -> bool:
        return self.current_tokens is not None


@dataclass(frozen=True, slots=True)
class FileEstimate:
    """Both modes' token estimates for one file."""

    path: str
    action: str  # "create" or "edit"
    full_file: int
    structured_edit: int


@dataclass(frozen=True, slots=True)
class OutputModeChoice:
    """The chosen output mode, each option's total estimate and the per-file estimates."""

    mode: str
    estimates: dict[str, int]
    files: tuple[FileEstimate, ...]
    reason: str

    @property
    def creates_files(self) -> bool:
        return any(f.action == "create" for f in self.files)

    @property
    def edits_files(self) -> bool:
        return any(f.action == "edit" for f in self.files)


def files_from_paths(
    paths: Sequence[str | os.PathLike[str] | FileToWrite], tokenizer: Tokenizer
) -> list[FileToWrite]:
    """Describe each path: an existing text file is measured, a missing one is to be created."""
    from tokenpilot._walk import read_text  # pulls in subprocess/shutil: only when files are given

    files = []
    for item in paths:
        if isinstance(item, FileToWrite):
            files.append(item)
            continue
        path = Path(item)
        if path.is_dir():
            raise InputError(f"files_to_write: {path} is a directory, not a file")
        if not path.exists():
            files.append(FileToWrite(str(item)))
            continue
        text_file = read_text(path)
        if text_file.text is None:
            raise InputError(f"files_to_write: cannot read {path}: {text_file.problem}")
        files.append(FileToWrite(str(item), current_tokens=tokenizer.count(text_file.text)))
    return files


def estimate_file(file: FileToWrite, *, new_file_tokens: int, edit_fraction: float) -> FileEstimate:
    """Whole-file and structured-edit token estimates of writing one file."""
    if file.current_tokens is None:
        size = file.new_tokens if file.new_tokens is not None else new_file_tokens
        return FileEstimate(file.path, "create", size + FULL_FILE_OVERHEAD, size + STRUCTURED_OVERHEAD)
    size = file.current_tokens
    fraction = file.edit_fraction if file.edit_fraction is not None else edit_fraction
    changed = min(size, max(MIN_CHANGED_TOKENS, math.ceil(size * fraction)))
    return FileEstimate(file.path, "edit", size + FULL_FILE_OVERHEAD, 2 * changed + STRUCTURED_OVERHEAD)


def choose_output_mode(
    files: Sequence[FileToWrite], *, new_file_tokens: int = 600, edit_fraction: float = 0.1
) -> OutputModeChoice:
    """The cheaper of whole files and structured edits for writing `files`.

    >>> choice = choose_output_mode([FileToWrite("a.py"), FileToWrite("b.py")])
    >>> choice.mode, choice.estimates
    ('full_file', {'full_file': 1224, 'structured_edit': 1248})
    """
    if not files:
        raise InputError("choose_output_mode needs at least one file to write")
    estimates = tuple(
        estimate_file(f, new_file_tokens=new_file_tokens, edit_fraction=edit_fraction) for f in files
    )
    totals = {
        "full_file": sum(e.full_file for e in estimates),
        "structured_edit": sum(e.structured_edit for e in estimates),
    }
    mode = "structured_edit" if totals["structured_edit"] < totals["full_file"] else "full_file"
    created = sum(1 for e in estimates if e.action == "create")
    edited = len(estimates) - created
    reason = (
        f"output mode {mode}: {created} file(s) to create, {edited} to edit; "
        f"whole files ≈ {totals['full_file']:,} tokens, structured edits ≈ {totals['structured_edit']:,}"
    )
    return OutputModeChoice(mode=mode, estimates=totals, files=estimates, reason=reason)
