"""`pack()`: a repository, a task and a budget in; the best context within the budget out.

The flow, as the code runs it (one module each):

1. `discover` — the candidate files and why every other file is left out (`paths`: vendored,
   build, lock; `secrets`: credential files by name);
2. `features` — per-file terms, lengths and definitions (cached by content hash);
3. `lexical` — the BM25 index of the tree (bm25s's Lucene scores; kept on disk per tree);
4. `rank` — every file's relevance to the task, read once (`terms.read_task`);
5. `examine` — the best-ranked files only: secrets redacted, outlines, and for the best of them
   definition slices ordered for the task (`slices`);
6. `assemble` — options per file, the monotone knapsack (`select`), the text (`render`) and the
   exact count, stepping down until it fits.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tokenpilot._exceptions import InputError
from tokenpilot._models import get_model
from tokenpilot._pack import render as rendering
from tokenpilot._pack.assemble import Assembled, Assembler
from tokenpilot._pack.cache import PackCache
from tokenpilot._pack.discover import Discovery, Exclusion, FileChanged, SourceFile, discover
from tokenpilot._pack.features import FeatureTable
from tokenpilot._pack.lexical import lexical_index
from tokenpilot._pack.rank import FileScore, query_terms, rank
from tokenpilot._pack.result import PackResult, PackStats
from tokenpilot._pack.settings import Settings, parse_budget, settings
from tokenpilot._pack.slices import task_clues
from tokenpilot._pack.terms import read_task
from tokenpilot._tokens import Tokenizer, tokenizer_for

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]


def pack(
    root: str | Path,
    task: str,
    budget: int | str,
    model: str | None = None,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    focus: Sequence[str] = (),
    format: str = "xml",
    cache: bool | str | Path | None = None,
    secrets: str | None = None,
    max_file_bytes: int | None = None,
    progress: ProgressCallback | None = None,
) -> PackResult:
    """Fit the files of `root` most relevant to `task` into `budget` tokens of `model`.

    Each file is shown in full, as slices (its header and the definitions the task is about), as an
    outline, as a path in the tree, or left out; the final text (task, header, tree and wrappers
    included) is counted exactly and is never over the budget.

        >>> import tokenpilot as tp, pathlib, tempfile
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (root / "client.py").write_text("def retry(n):\\n    return [n] * 3\\n")
        >>> result = tp.pack(root, "fix the retry loop", "2k", "gpt-4o", cache=False)
        >>> result.tokens <= 2000, [(f.path, f.tier) for f in result.files]
        (True, [('client.py', 'full')])

    `cache`: None (config, default on), False (off), or a path to the SQLite file. `secrets`:
    "redact" (default) replaces secret lines with a marker, "drop" leaves such files out.
    """
    timing: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timing[stage] = (now - clock) * 1000.0
        clock = now

    fmt = rendering.check_format(format)
    limit = parse_budget(budget)
    if not isinstance(task, str) or not task.strip():
        raise InputError("the task is empty: say what the context is for")
    base = Path(root)
    if not base.exists():
        raise InputError(f"no such file or directory: {root}")
    config = settings(cache, secrets, max_file_bytes)
    info = get_model(model)
    tokenizer = tokenizer_for(info.name)
    allowed = tokenizer.safe_budget(limit)
    warnings: list[str] = []
    if limit > info.context_window:
        warnings.append(
            f"the budget of {limit:,} tokens is over {info.name}'s context window of {info.context_window:,}"
        )
        log.warning(warnings[-1])
    store = PackCache(config.cache_path)
    try:
        # files known by their stat are read only when needed; one that changed since (its text no
        # longer has the digest discovery took) starts the pack again, reading every file up front
        stages = functools.partial(
            _run,
            base,
            task,
            fmt,
            limit,
            allowed,
            tokenizer,
            store,
            config,
            include,
            exclude,
            focus,
            progress,
            lap,
            timing,
        )
        try:
            found, files, scores, result = stages(trust_stat=True)
        except FileChanged as changed:
            log.info("a file changed during the pack: packing again", extra={"path": str(changed)})
            timing.clear()
            clock = time.perf_counter()
            found, files, scores, result = stages(trust_stat=False)
    finally:
        store.close()
    shown = {f.path for f in result.files}
    score_of = {s.path: s.score for s in scores}
    omitted = tuple(
        Exclusion(
            f.path,
            "left out: budget" if score_of[f.path] > 0 else "left out: budget (no match with the task)",
        )
        for f in files
        if f.path not in shown and f.path not in result.dropped
    )
    dropped = tuple(Exclusion(path, reason) for path, reason in sorted(result.dropped.items()))
    notes = tuple(Exclusion(f.path, f.note) for f in files if f.note)
    return PackResult(
        text=result.text,
        tokens=result.tokens,
        budget=limit,
        model=info.name,
        tokenizer=tokenizer.name,
        exact=tokenizer.exact,
        task_tokens=tokenizer.count(task),
        files=result.files,
        excluded=found.excluded + dropped + omitted,
        redacted=result.redacted,
        notes=notes,
        warnings=tuple(warnings),
        stats=PackStats(
            files_seen=found.seen,
            files_candidates=len(files),
            files_examined=result.examined,
            timing_ms=timing,
            cache="on" if store.path is not None else "off",
        ),
    )


def _index_dir(store: PackCache) -> Path | None:
    """Where BM25 indexes are kept: beside the cache database (none when the cache is off)."""
    if store.path is None or not store.enabled:
        return None
    return store.path.with_name(store.path.name + ".bm25")


def _run(
    base: Path,
    task: str,
    fmt: str,
    limit: int,
    allowed: int,
    tokenizer: Tokenizer,
    store: PackCache,
    config: Settings,
    include: Sequence[str],
    exclude: Sequence[str],
    focus: Sequence[str],
    progress: ProgressCallback | None,
    lap: Callable[[str], None],
    timing: dict[str, float],
    *,
    trust_stat: bool,
) -> tuple[Discovery, list[SourceFile], list[FileScore], Assembled]:
    """The stages, in order (the module docstring), timed by `lap`."""
    table = FeatureTable(None, store, tree=os.path.abspath(base))
    # the features of each file read are taken while its text is in memory, then the text is let
    # go; when packing again after a file changed, every text is kept (nothing is read twice)
    try:
        found = discover(
            base,
            include=include,
            exclude=exclude,
            max_bytes=config.max_file_bytes,
            progress=(lambda done, total: progress("discover", done, total)) if progress else None,
            store=store,
            trust_stat=trust_stat,
            on_read=table.add if trust_stat else None,
        )
        files = list(found.files)
        table.finish(files)
    finally:
        table.close()  # the worker processes of a cold scan, if any
    lap("discover")
    # discovery hands the files it reads to the feature stage: its time is reported apart
    timing["features"] = table.elapsed_ms
    timing["discover"] -= table.elapsed_ms
    read = read_task(task)
    mentions = read.mentions
    query = query_terms(read.text, mentions.identifiers)
    clues = task_clues(read.text, mentions.identifiers, mentions.dotted)
    paths = [f.path for f in files]
    digests = [f.digest for f in files]
    index = lexical_index(paths, digests, table.complete, _index_dir(store))
    names_index = lexical_index(paths, digests, table.names, _index_dir(store), field="names")
    lap("index")
    scores = rank(
        paths,
        table.features,
        query,
        mentions,
        focus=focus,
        include=include,
        bm25_index=index,
        names_index=names_index,
        terms_of=table.terms_of,
        parts_of=table.parts_of,
        messages=clues.messages,
        text_of=lambda i: files[i].text,
        task_text=read.text,
    )
    del index, names_index  # the tree's vocabularies and matrices: not needed past ranking
    order = sorted(range(len(files)), key=lambda i: (-scores[i].score, files[i].path))
    lap("rank")
    assembler = Assembler(
        fmt, limit, allowed, task, tokenizer, files, store, config.secrets, mentions.identifiers
    )
    result = assembler.run(order, [s.score for s in scores], query, clues, progress)
    lap("select_render")
    return found, files, scores, result
