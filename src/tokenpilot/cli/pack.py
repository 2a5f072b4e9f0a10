"""`tokenpilot pack`: fit a repository into a token budget for a task."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from tokenpilot._exceptions import InputError
from tokenpilot.cli._input import parse_budget, read_source
from tokenpilot.cli._output import print_json, stderr

_PROGRESS_MIN_FILES = 500


def pack(
    path: Path = typer.Argument(Path("."), help="Repository or directory to pack (default: .)."),
    task: str | None = typer.Option(None, "--task", "-t", help="What the context is for."),
    task_file: Path | None = typer.Option(
        None, "--task-file", help="Read the task from a file ('-': stdin)."
    ),
    budget: str = typer.Option(..., "--budget", "-b", help="Token budget: 20000, 20k, 1.5m."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Model whose tokenizer counts (default: gpt-4o)."
    ),
    fmt: str = typer.Option("xml", "--format", "-f", help="xml, markdown or plain."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the packed text here."),
    manifest: Path | None = typer.Option(None, "--manifest", help="Write the JSON manifest here."),
    include: list[str] = typer.Option([], "--include", help="Glob of files that must be shown (repeatable)."),
    exclude: list[str] = typer.Option([], "--exclude", help="Glob of files to leave out (repeatable)."),
    focus: list[str] = typer.Option([], "--focus", help="Glob of files to favour (repeatable)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the on-disk cache."),
    drop_secrets: bool = typer.Option(
        False, "--drop-secrets", help="Leave out files with secrets instead of redacting their lines."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest (JSON) instead of the text."),
) -> None:
    """Pack the files most relevant to a task into a hard token budget (full, slices, outline or path)."""
    from tokenpilot._pack import pack as pack_repository

    if (task is None) == (task_file is None):
        raise InputError("give exactly one of --task TEXT or --task-file FILE")
    if task_file is not None:
        task = read_source(task_file, "task file")
    assert task is not None
    limit = parse_budget(budget)
    progress = _ProgressBar() if sys.stderr.isatty() else None
    try:
        result = pack_repository(
            path,
            task,
            limit,
            model,
            include=include,
            exclude=exclude,
            focus=focus,
            format=fmt,
            cache=False if no_cache else None,
            secrets="drop" if drop_secrets else None,
            progress=progress.update if progress else None,
        )
    finally:
        if progress is not None:
            progress.close()
    # result.warnings reached stderr through the library's log (the CLI's warnings handler)
    report = result.report()
    if manifest is not None:
        _write(manifest, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    if output is not None:
        _write(output, result.text)
    if as_json:
        print_json(report)
    elif output is None:
        sys.stdout.write(result.text)
    else:
        stderr.print(
            f"wrote {output}: {result.tokens:,} of {result.budget:,} tokens "
            f"({result.model}, {result.tokenizer}), "
            f"{sum(f.tier == 'full' for f in result.files)} full, "
            f"{sum(f.tier == 'slices' for f in result.files)} slices, "
            f"{sum(f.tier == 'outline' for f in result.files)} outline, "
            f"{sum(f.tier == 'path' for f in result.files)} path"
        )


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None


class _ProgressBar:
    """A rich progress bar on stderr, shown only once a stage has many files."""

    def __init__(self) -> None:
        from rich.progress import Progress, TaskID

        self._progress = Progress(console=stderr, transient=True)
        self._tasks: dict[str, TaskID] = {}
        self._started = False

    def update(self, stage: str, done: int, total: int) -> None:
        if total < _PROGRESS_MIN_FILES:
            return
        if not self._started:
            self._progress.start()
            self._started = True
        if stage not in self._tasks:
            self._tasks[stage] = self._progress.add_task(stage, total=total)
        self._progress.update(self._tasks[stage], completed=done + 1)

    def close(self) -> None:
        if self._started:
            self._progress.stop()
