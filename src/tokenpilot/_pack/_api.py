"""`pack()`: a repository, a task and a budget in; the best context within the budget out.

discover → protect secrets → outline → rank → select → render, then the final text is counted
exactly with the model's tokenizer and trimmed until it fits (hard budgets are hard).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenpilot._config import load_config
from tokenpilot._exceptions import BudgetError, ConfigError, InputError
from tokenpilot._models import get_model
from tokenpilot._pack import render as rendering
from tokenpilot._pack.cache import PackCache, default_cache_path
from tokenpilot._pack.discover import DEFAULT_MAX_BYTES, Exclusion, SourceFile, discover
from tokenpilot._pack.lexical import lexical_index
from tokenpilot._pack.outline import fit_outline
from tokenpilot._pack.outline import outline as make_outline
from tokenpilot._pack.rank import FileFeatures, file_features, file_parts, rank
from tokenpilot._pack.secrets import Finding, find_secrets, redact
from tokenpilot._pack.select import Choice, Option, select
from tokenpilot._pack.terms import task_mentions, text_terms
from tokenpilot._tokens import Tokenizer, tokenizer_for

log = logging.getLogger(__name__)

# value of showing a file at a tier, as a share of the value of its full text
TIER_UTILITY: dict[str, float] = {"full": 1.0, "outline": 0.45, "path": 0.02}
# relevance is sharpened before it becomes value, so the best files win their full text over
# outlines of many middling ones: value = (score / best score) ** RELEVANCE_SHARPNESS
RELEVANCE_SHARPNESS = 3.0
RANK_DECAY = 0.0
SECRET_MODES = ("redact", "drop")
# files looked at closely (secrets, outline, exact counts) go down the ranking until their outlines
# would fill this many budgets; the rest can only be shown as a path
_DEEP_BUDGETS = 3.0
_DEEP_MIN_FILES = 50
_DEEP_MAX_FILES = 400
_OUTLINE_SHARE_ESTIMATE = 0.15
_CHARS_PER_TOKEN_ESTIMATE = 3.5
_REPAIR_ROUNDS = 50
_BATCH_MIN_CHARS = 400_000
# an outline may take at most this share of the budget; longer ones keep the definitions the task
# names and the top-level ones (see outline.fit_outline)
OUTLINE_BUDGET_SHARE = 0.015
_OUTLINE_MIN_TOKENS = 120
_FEATURES_KIND = "features:2"  # length and definitions
_TERMS_KIND = "terms:1"
_PARTS_KIND = "parts:1"  # term tables of the stretches between definitions
_SECRETS_KIND = "secrets:1"
_OUTLINE_KIND = "outline:1"
_COUNT_KIND = "count:1"
_OUTLINE_COUNTS_KIND = "outline-counts:1"

ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class PackedFile:
    """A file in the packed text: its tier, the tokens it costs there, and its relevance score."""

    path: str
    tier: str
    tokens: int
    score: float


@dataclass(frozen=True, slots=True)
class Redaction:
    """A line of a shown file replaced by a redaction marker."""

    path: str
    line: int
    kind: str


@dataclass(frozen=True, slots=True)
class PackStats:
    """How the pack went: files seen, files looked at closely, milliseconds per stage."""

    files_seen: int
    files_candidates: int
    files_examined: int
    timing_ms: Mapping[str, float] = field(default_factory=dict)
    cache: str = "off"


@dataclass(frozen=True, slots=True)
class PackResult:
    """The packed context and the report of what is in it and what was left out."""

    text: str
    tokens: int
    budget: int
    model: str
    tokenizer: str
    exact: bool
    task_tokens: int
    files: tuple[PackedFile, ...]
    excluded: tuple[Exclusion, ...]
    redacted: tuple[Redaction, ...]
    notes: tuple[Exclusion, ...]
    stats: PackStats

    def manifest(self) -> dict[str, Any]:
        """The machine-readable report (what `tokenpilot pack --json` prints)."""
        return {
            "model": self.model,
            "tokenizer": self.tokenizer,
            "exact": self.exact,
            "budget": self.budget,
            "tokens": self.tokens,
            "task_tokens": self.task_tokens,
            "files": [
                {"path": f.path, "tier": f.tier, "tokens": f.tokens, "score": round(f.score, 6)}
                for f in self.files
            ],
            "excluded": [{"path": e.path, "reason": e.reason} for e in self.excluded],
            "redacted": [{"path": r.path, "line": r.line, "kind": r.kind} for r in self.redacted],
            "notes": [{"path": n.path, "note": n.reason} for n in self.notes],
            "timing_ms": {k: round(v, 1) for k, v in self.stats.timing_ms.items()},
        }


@dataclass(frozen=True, slots=True)
class _Settings:
    max_file_bytes: int
    secrets: str
    cache_path: Path | None


def _settings(cache: bool | str | Path | None, secrets: str | None, max_file_bytes: int | None) -> _Settings:
    config = load_config()
    table = config.section("pack")

    def source(key: str) -> str:
        return config.source_of("pack", key)

    known = {"max_file_bytes", "secrets", "cache", "cache_path"}
    for key in table:
        if key not in known:
            raise ConfigError(
                f"unknown setting (known: {', '.join(sorted(known))})", source=source(key), key=f"pack.{key}"
            )
    size = max_file_bytes if max_file_bytes is not None else table.get("max_file_bytes", DEFAULT_MAX_BYTES)
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise ConfigError(
            "must be a positive integer", source=source("max_file_bytes"), key="pack.max_file_bytes"
        )
    mode = secrets if secrets is not None else table.get("secrets", "redact")
    if mode not in SECRET_MODES:
        raise ConfigError(
            f"must be one of {', '.join(SECRET_MODES)}", source=source("secrets"), key="pack.secrets"
        )
    enabled = table.get("cache", True)
    if not isinstance(enabled, bool):
        raise ConfigError("must be true or false", source=source("cache"), key="pack.cache")
    configured_path = table.get("cache_path")
    if configured_path is not None and not isinstance(configured_path, str):
        raise ConfigError("must be a path", source=source("cache_path"), key="pack.cache_path")
    path: Path | None
    if cache is False or (cache is None and not enabled):
        path = None
    elif isinstance(cache, str | Path) and not isinstance(cache, bool):
        path = Path(cache)
    else:
        path = Path(configured_path).expanduser() if configured_path else default_cache_path()
    return _Settings(size, mode, path)


def parse_budget(value: str | int) -> int:
    """A budget from `20000`, `20k`, `1.5m` (case-insensitive, `_` and `,` allowed).

    >>> parse_budget("1.5k")
    1500
    """
    if isinstance(value, int) and not isinstance(value, bool):
        number = float(value)
    else:
        text = str(value).strip().lower().replace("_", "").replace(",", "")
        scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
        digits = text[:-1] if scale != 1 else text
        try:
            number = float(digits) * scale
        except ValueError:
            raise InputError(f"not a token budget: {value!r} (use e.g. 20000, 20k, 1.5m)") from None
    if not math.isfinite(number) or number < 1 or number != int(number):
        raise InputError(f"a token budget must be a positive whole number of tokens, got {value!r}")
    return int(number)


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

    Each file is shown in full, as an outline, as a path in the tree, or left out; the final text
    (task, header, tree and wrappers included) is counted exactly and is never over the budget.

        >>> result = tp.pack(".", "fix the retry loop in the HTTP client", "8k", "gpt-4o")  # doctest: +SKIP
        >>> result.tokens <= 8000
        True
        >>> [(f.path, f.tier) for f in result.files][:2]                                  # doctest: +SKIP
        [('src/client.py', 'full'), ('src/retry.py', 'outline')]

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
    settings = _settings(cache, secrets, max_file_bytes)
    info = get_model(model)
    tokenizer = tokenizer_for(info.name)
    allowed = tokenizer.safe_budget(limit)
    store = PackCache(settings.cache_path)
    try:
        found = discover(
            base,
            include=include,
            exclude=exclude,
            max_bytes=settings.max_file_bytes,
            progress=(lambda done, total: progress("discover", done, total)) if progress else None,
        )
        lap("discover")
        files = list(found.files)
        table = _Features(files, store)
        lap("features")
        mentions = task_mentions(task)
        paths = [f.path for f in files]
        index = lexical_index(paths, [f.digest for f in files], table.complete, _index_dir(store))
        lap("index")
        scores = rank(
            paths,
            table.features,
            task,
            mentions,
            focus=focus,
            include=include,
            bm25_index=index,
            terms_of=table.terms_of,
            parts_of=table.parts_of,
        )
        order = sorted(range(len(files)), key=lambda i: (-scores[i].score, files[i].path))
        lap("rank")
        packer = _Packer(
            fmt, limit, allowed, task, tokenizer, files, store, settings.secrets, mentions.identifiers
        )
        result = packer.run(order, [s.score for s in scores], progress)
        lap("select_render")
    finally:
        store.close()
    shown = {f.path for f in result.files}
    omitted = tuple(
        Exclusion(f.path, "left out: budget")
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


class _Features:
    """Per-file ranking features from the cache; the (large) term tables only when needed.

    Lengths and definitions of every file are always loaded. The term tables feed the BM25 index,
    so when the index of this exact tree is already on disk (a warm run) only the few files the
    graph stage reads need theirs: decoding every table is most of a warm run's ranking time.
    """

    def __init__(self, files: Sequence[SourceFile], store: PackCache) -> None:
        self.files = files
        self.store = store
        self._terms: dict[int, Mapping[str, int]] = {}
        cached = store.get_many(_FEATURES_KIND, [f.digest for f in files])
        fresh_meta: dict[str, str] = {}
        fresh_terms: dict[str, str] = {}
        self.features: list[FileFeatures] = []
        for n, f in enumerate(files):
            raw = cached.get(f.digest)
            if raw is not None:
                try:
                    data = json.loads(raw)
                    self.features.append(FileFeatures({}, int(data["n"]), tuple(data["d"])))
                    continue
                except (ValueError, KeyError, TypeError):
                    log.warning("ignoring a damaged cache entry", extra={"path": f.path})
            computed = file_features(f.text)
            self._terms[n] = computed.terms
            self.features.append(computed)
            fresh_meta[f.digest] = json.dumps(
                {"n": computed.length, "d": list(computed.definitions)}, separators=(",", ":")
            )
            fresh_terms[f.digest] = json.dumps(computed.terms, separators=(",", ":"))
        store.put_many(_TERMS_KIND, fresh_terms)
        store.put_many(_FEATURES_KIND, fresh_meta)

    def terms_of(self, indices: Sequence[int]) -> list[Mapping[str, int]]:
        """The term tables of these files (cache, else computed from the text)."""
        missing = [i for i in indices if i not in self._terms]
        cached = self.store.get_many(_TERMS_KIND, [self.files[i].digest for i in missing])
        for i in missing:
            raw = cached.get(self.files[i].digest)
            terms: Mapping[str, int] | None = None
            if raw is not None:
                try:
                    loaded = json.loads(raw)
                    if isinstance(loaded, dict):
                        terms = loaded
                except ValueError:
                    log.warning("ignoring a damaged cache entry", extra={"path": self.files[i].path})
            self._terms[i] = terms if terms is not None else text_terms(self.files[i].text)
        return [self._terms[i] for i in indices]

    def parts_of(self, indices: Sequence[int]) -> list[list[dict[str, int]]]:
        """The term tables of these files' parts (cache, else computed from the text)."""
        digests = [self.files[i].digest for i in indices]
        cached = self.store.get_many(_PARTS_KIND, digests)
        out: list[list[dict[str, int]]] = []
        fresh: dict[str, str] = {}
        for i, digest in zip(indices, digests, strict=True):
            parts: list[dict[str, int]] | None = None
            raw = cached.get(digest)
            if raw is not None:
                try:
                    loaded = json.loads(raw)
                    if isinstance(loaded, list) and all(isinstance(p, dict) for p in loaded):
                        parts = loaded
                except ValueError:
                    log.warning("ignoring a damaged cache entry", extra={"path": self.files[i].path})
            if parts is None:
                parts = file_parts(self.files[i].text)
                fresh[digest] = json.dumps(parts, separators=(",", ":"))
            out.append(parts)
        self.store.put_many(_PARTS_KIND, fresh)
        return out

    def complete(self) -> list[FileFeatures]:
        """Features with every file's term table (for building the BM25 index)."""
        tables = self.terms_of(range(len(self.files)))
        return [FileFeatures(t, f.length, f.definitions) for f, t in zip(self.features, tables, strict=True)]


@dataclass(frozen=True, slots=True)
class _Packed:
    text: str
    tokens: int
    files: tuple[PackedFile, ...]
    redacted: tuple[Redaction, ...]
    dropped: dict[str, str]
    examined: int


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A file looked at closely: its secret findings and its bodies per tier."""

    findings: tuple[Finding, ...]
    full: str
    outline: str


class _Packer:
    """Costs, selection, rendering and the exact final check, for one pack."""

    def __init__(
        self,
        fmt: str,
        budget: int,
        allowed: int,
        task: str,
        tokenizer: Tokenizer,
        files: Sequence[SourceFile],
        store: PackCache,
        secrets_mode: str,
        names: Sequence[str] = (),
    ) -> None:
        self.fmt = fmt
        self.budget = budget
        self.allowed = allowed
        self.task = task
        self.tokenizer = tokenizer
        self.files = files
        self.store = store
        self.secrets_mode = secrets_mode
        self.names = names

    def _count_many(self, texts: Sequence[str]) -> list[int]:
        many = getattr(self.tokenizer, "count_many", None)
        # tiktoken's batch runs one thread task per text: worth it only for a lot of text
        if many is not None and sum(len(text) for text in texts) > _BATCH_MIN_CHARS:
            counts: list[int] = many(texts)
            return counts
        return [self.tokenizer.count(text) for text in texts]

    def _render(self, shown: Sequence[rendering.ShownFile], tokens: int) -> str:
        omitted = len(self.files) - len(shown)
        return rendering.render(
            self.fmt, budget=self.budget, tokens=tokens, task=self.task, files=shown, omitted=omitted
        )

    def run(
        self, order: Sequence[int], scores: Sequence[float], progress: ProgressCallback | None
    ) -> _Packed:
        fixed = self.tokenizer.count(self._render([], self.budget))
        if fixed > self.allowed:
            raise BudgetError(
                f"the task and the pack's frame need {fixed:,} tokens, over the budget of {self.budget:,}"
                + ("" if self.allowed == self.budget else f" ({self.allowed:,} after the estimate margin)")
            )
        paths = [f.path for f in self.files]
        path_costs = self._count_many([rendering.tree_line(p) for p in paths])
        deep = self._deep_candidates(order, scores)
        prepared = self._prepare([self.files[i] for i in deep], progress)
        dropped: dict[str, str] = {}
        choices: list[Choice] = []
        body_costs: dict[tuple[int, str], int] = {}
        deep_bodies = []
        for i in deep:
            p = prepared[self.files[i].digest]
            if p.findings and self.secrets_mode == "drop":
                dropped[paths[i]] = f"secrets found ({len(p.findings)} lines): dropped"
                continue
            deep_bodies.append((i, p))
        full_costs = self._full_costs([(paths[i], self.files[i].digest, p.full) for i, p in deep_bodies])
        outline_costs = self._count_many(
            [rendering.file_block(self.fmt, paths[i], "outline", p.outline) for i, p in deep_bodies]
        )
        for n, (i, _) in enumerate(deep_bodies):
            body_costs[(i, "full")] = full_costs[n]
            body_costs[(i, "outline")] = outline_costs[n]
        deep_set = {i for i, _ in deep_bodies}
        best = max((scores[i] for i in order[:1]), default=0.0) or 1.0
        for rank_position, i in enumerate(order):
            if paths[i] in dropped or (scores[i] <= 0 and i not in deep_set):
                continue
            value = (max(scores[i], 0.0) / best) ** RELEVANCE_SHARPNESS / (1.0 + rank_position) ** RANK_DECAY
            value += 1e-9 * (len(order) - rank_position)
            options = [Option("path", path_costs[i], value * TIER_UTILITY["path"])]
            if i in deep_set:
                for tier in ("outline", "full"):
                    cost = path_costs[i] + body_costs[(i, tier)]
                    options.append(Option(tier, cost, value * TIER_UTILITY[tier]))
            choices.append(Choice(i, tuple(options)))
        capacity = self.allowed - fixed
        chosen = select(choices, capacity)
        rank_of = {i: r for r, i in enumerate(order)}
        for _ in range(_REPAIR_ROUNDS):
            shown = [
                rendering.ShownFile(paths[i], option.tier, self._body(prepared, i, option.tier))
                for i, option in sorted(chosen.items(), key=lambda item: rank_of[item[0]])
            ]
            text, tokens = self._fit_header(shown)
            if tokens <= self.allowed:
                break
            self._downgrade(chosen, choices, tokens - self.allowed)
        else:  # pragma: no cover - each round removes at least one token's worth of choices
            raise BudgetError(f"could not fit the pack into {self.budget:,} tokens")
        files = tuple(
            PackedFile(
                s.path,
                s.tier,
                chosen[i].cost,
                scores[i],
            )
            for s, i in zip(shown, sorted(chosen, key=lambda k: rank_of[k]), strict=True)
        )
        redacted = tuple(
            Redaction(paths[i], finding.line, finding.kind)
            for i, option in sorted(chosen.items(), key=lambda item: paths[item[0]])
            if option.tier != "path"
            for finding in prepared[self.files[i].digest].findings
            if option.tier == "full" or f"{finding.line}│" in prepared[self.files[i].digest].outline
        )
        return _Packed(text, tokens, files, redacted, dropped, len(deep))

    def _full_costs(self, items: Sequence[tuple[str, str, str]]) -> list[int]:
        """Tokens of each full-text block, from the cache when this file was counted before."""
        keys = [f"{self.tokenizer.name}:{self.fmt}:{digest}:{path}" for path, digest, _ in items]
        cached = self.store.get_many(_COUNT_KIND, keys)
        missing = [n for n, key in enumerate(keys) if key not in cached]
        fresh = self._count_many(
            [rendering.file_block(self.fmt, items[n][0], "full", items[n][2]) for n in missing]
        )
        self.store.put_many(
            _COUNT_KIND, {keys[n]: str(count) for n, count in zip(missing, fresh, strict=True)}
        )
        found = {keys[n]: count for n, count in zip(missing, fresh, strict=True)}
        return [found[key] if key in found else int(cached[key]) for key in keys]

    def _body(self, prepared: Mapping[str, _Prepared], index: int, tier: str) -> str:
        if tier == "path":
            return ""
        p = prepared[self.files[index].digest]
        return p.full if tier == "full" else p.outline

    def _fit_header(self, shown: Sequence[rendering.ShownFile]) -> tuple[str, int]:
        """Render with the header's token figure equal to the text's real count (a fixed point)."""
        claimed = self.budget
        text = self._render(shown, claimed)
        tokens = self.tokenizer.count(text)
        for _ in range(5):
            if tokens == claimed:
                break
            claimed = tokens
            text = self._render(shown, claimed)
            tokens = self.tokenizer.count(text)
        if tokens != claimed:
            # the figure's own digits keep changing the count: claim the budget instead (an upper bound)
            text = self._render(shown, self.budget)
            tokens = self.tokenizer.count(text)
        return text, tokens

    @staticmethod
    def _downgrade(chosen: dict[int, Option], choices: Sequence[Choice], excess: int) -> None:
        """Free at least `excess` tokens by stepping down the least efficient choices."""
        options_of = {c.key: sorted(c.options, key=lambda o: o.cost) for c in choices}
        freed = 0
        while freed < excess and chosen:
            key = min(chosen, key=lambda k: (chosen[k].value / max(chosen[k].cost, 1), -k))
            current = chosen[key]
            cheaper = [o for o in options_of[key] if o.cost < current.cost]
            if cheaper:
                chosen[key] = cheaper[-1]
                freed += current.cost - cheaper[-1].cost
            else:
                del chosen[key]
                freed += current.cost

    def _deep_candidates(self, order: Sequence[int], scores: Sequence[float]) -> list[int]:
        deep: list[int] = []
        estimated = 0.0
        for i in order:
            if len(deep) >= _DEEP_MAX_FILES:
                break
            if len(deep) >= _DEEP_MIN_FILES and (estimated > _DEEP_BUDGETS * self.budget or scores[i] <= 0):
                break
            deep.append(i)
            estimated += len(self.files[i].text) / _CHARS_PER_TOKEN_ESTIMATE * _OUTLINE_SHARE_ESTIMATE
        return deep

    def _prepare(
        self, files: Sequence[SourceFile], progress: ProgressCallback | None
    ) -> dict[str, _Prepared]:
        digests = [f.digest for f in files]
        secrets_cached = self.store.get_many(_SECRETS_KIND, digests)
        outline_keys = [f"{f.digest}:{_suffix(f.path)}" for f in files]
        outlines_cached = self.store.get_many(_OUTLINE_KIND, outline_keys)
        # token counts of each outline's lines: fitting an outline to its cap counts them all
        counts_cached = self.store.get_many(
            _OUTLINE_COUNTS_KIND, [f"{self.tokenizer.name}:{key}" for key in outline_keys]
        )
        new_counts: dict[str, str] = {}
        new_secrets: dict[str, str] = {}
        new_outlines: dict[str, str] = {}
        out: dict[str, _Prepared] = {}
        for n, (f, okey) in enumerate(zip(files, outline_keys, strict=True)):
            if progress is not None:
                progress("outline", n, len(files))
            raw = secrets_cached.get(f.digest)
            findings_cached: tuple[Finding, ...] | None = None
            if raw is not None:
                try:
                    findings_cached = tuple(Finding(int(line), str(kind)) for line, kind in json.loads(raw))
                except (ValueError, TypeError):
                    log.warning("ignoring a damaged cache entry", extra={"path": f.path})
            if findings_cached is not None:
                findings = findings_cached
            else:
                findings = find_secrets(f.path, f.text)
                new_secrets[f.digest] = json.dumps([[x.line, x.kind] for x in findings])
            full = redact(f.text, findings)
            outline_text = outlines_cached.get(okey)
            if outline_text is None:
                # outlines are made from the redacted text, so no tier can show a secret
                outline_text = make_outline(f.path, full)
                new_outlines[okey] = outline_text
            cap = max(_OUTLINE_MIN_TOKENS, int(self.budget * OUTLINE_BUDGET_SHARE))
            ckey = f"{self.tokenizer.name}:{okey}"
            memo = _CountMemo(self._count_many, _json_counts(counts_cached.get(ckey)))
            fitted = fit_outline(outline_text, cap, memo, self.names)
            if memo.fresh:
                new_counts[ckey] = json.dumps(memo.known, separators=(",", ":"), ensure_ascii=False)
            out[f.digest] = _Prepared(findings, full, fitted)
        self.store.put_many(_SECRETS_KIND, new_secrets)
        self.store.put_many(_OUTLINE_KIND, new_outlines)
        self.store.put_many(_OUTLINE_COUNTS_KIND, new_counts)
        return out


class _CountMemo:
    """A token counter that remembers (and starts from) the counts of texts it has seen."""

    def __init__(self, count_many: Callable[[Sequence[str]], list[int]], known: dict[str, int]) -> None:
        self.count_many = count_many
        self.known = known
        self.fresh = False

    def __call__(self, texts: list[str]) -> list[int]:
        missing = list(dict.fromkeys(t for t in texts if t not in self.known))
        if missing:
            self.known.update(zip(missing, self.count_many(missing), strict=True))
            self.fresh = True
        return [self.known[t] for t in texts]


def _json_counts(raw: str | None) -> dict[str, int]:
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, int)}


def _suffix(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""
