"""The files that may be shown beyond a path, looked at closely: secrets, outline, definition slices.

Only the best-ranked files get here (`deep_candidates`): each is scanned for secrets and redacted
(`secrets`), outlined from the redacted text (`outline`, cut to OUTLINE_MAX_TOKENS), and the best
SLICE_FILES of them also get their definitions ordered for the task (`slices`), from which the
slices of each size are rendered. Every per-file result is cached by content hash.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import BrokenExecutor, Future
from dataclasses import dataclass

from tokenpilot._pack.cache import PackCache
from tokenpilot._pack.discover import SourceFile
from tokenpilot._pack.outline import fit_outline, forget_tree
from tokenpilot._pack.outline import outline as make_outline
from tokenpilot._pack.secrets import Finding, find_secrets, load_scanner, redact
from tokenpilot._pack.slices import (
    SIZES,
    Definition,
    Slice,
    TaskClues,
    corpus_statistics,
    definitions,
    joined_namesakes,
    order_definitions,
    own_texts,
    render_slices,
    with_namesakes,
)
from tokenpilot._pack.terms import text_terms
from tokenpilot._pack.workers import fork_pool, pool_workers

log = logging.getLogger(__name__)

# an outline may take at most this many tokens; longer ones keep the definitions the task names and
# the top-level ones (see outline.fit_outline). A fixed cap keeps the options independent of the budget.
OUTLINE_MAX_TOKENS = 250
SLICE_FILES = 15  # files that may be shown as slices (the best-ranked with definitions)
# the long class whose definitions weigh most, whole, is one more size (`_class_of`), when at
# most this share of the file
CLASS_OPTION = True
CLASS_OPTION_MAX_SHARE = 0.8
SHARE_OF_BEST = 0  # a slice's share is of the best this many definitions' weight (0: of all)
SHARE_POWER = 2.0  # a definition's part of a file's relevance: its weight to this power
SHARE_MIN_RATIO = 0.0  # definitions weighing less than this share of the best count for nothing
# files looked at closely go down the ranking until their outlines would fill this many tokens (or
# DEEP_BUDGETS budgets, when that is more): the same files for every budget up to ~DEEP_TOKENS / DEEP_BUDGETS
DEEP_TOKENS = 80_000
DEEP_BUDGETS = 1.2
DEEP_MIN_FILES = 50
DEEP_MAX_FILES = 400
_OUTLINE_SHARE_ESTIMATE = 0.15
_CHARS_PER_TOKEN_ESTIMATE = 3.5
SECRETS_KIND = "secrets:1"
OUTLINE_KIND = "outline:2"
OUTLINE_COUNTS_KIND = "outline-counts:1"
FITTED_KIND = "outline-fitted:1"  # an outline cut to its cap, by the task's names it holds
DEFINITIONS_KIND = "definitions:2"
UNIT_TERMS_KIND = "unit-terms:2"

# files looked at closely for the first time: worker processes above this much text (on idle CPUs)
POOL_MIN_CHARS = 1_000_000

Counter = Callable[[Sequence[str]], list[int]]
_worker_count: Counter | None = None  # the token counter of a forked worker (its parent's)
# what a worker found for one file: finding rows, the redacted text (None: unchanged), the outline,
# the fitted outline, the counts fitting made (None: none), the definitions' rows (None: not asked)
_Fresh = tuple[
    list[list[object]], str | None, str, str, dict[str, int] | None, list[tuple[object, ...]] | None
]


@dataclass(frozen=True, slots=True)
class Examined:
    """A file looked at closely: its secret findings, its redacted text and its fitted outline."""

    findings: tuple[Finding, ...]
    full: str
    outline: str


@dataclass(frozen=True, slots=True)
class SliceOption:
    """One size of a file's `slices` tier: the body, the definitions shown, and its share of relevance."""

    body: str
    slices: tuple[Slice, ...]
    share: float


def deep_candidates(
    files: Sequence[SourceFile], order: Sequence[int], scores: Sequence[float], budget: int
) -> list[int]:
    """The files looked at closely: the best-ranked, until their outlines would fill the deep quota."""
    quota = max(DEEP_TOKENS, DEEP_BUDGETS * budget)
    deep: list[int] = []
    estimated = 0.0
    whole = 0.0  # the files so far, whole: files with no match come while they would all fit
    for i in order:
        if len(deep) >= DEEP_MAX_FILES:
            break
        if len(deep) >= DEEP_MIN_FILES and (estimated > quota or (scores[i] <= 0 and whole > budget)):
            break
        deep.append(i)
        estimated += files[i].chars / _CHARS_PER_TOKEN_ESTIMATE * _OUTLINE_SHARE_ESTIMATE
        whole += files[i].chars / _CHARS_PER_TOKEN_ESTIMATE
    return deep


def examine(
    files: Sequence[SourceFile],
    store: PackCache,
    count: Counter,
    tokenizer_name: str,
    names: Sequence[str],
    progress: Callable[[int, int], None] | None = None,
    on_examined: Callable[[int, Examined], None] | None = None,
    early_definitions: dict[str, tuple[Definition, ...]] | None = None,
) -> dict[str, Examined]:
    """Secrets, redacted text and fitted outline of each file (by digest), from the cache when known.

    `on_examined(n, examined)` is called as soon as file n is done (the caller counts its full
    text meanwhile). `early_definitions`: filled with the definitions of the first SLICE_FILES
    files whose outline is made here (by `slice_options`' key), from the tree the outline parsed.
    """
    digests = [f.digest for f in files]
    secrets_cached = store.get_many(SECRETS_KIND, digests)
    outline_keys = [f"{f.digest}:{_suffix(f.path)}" for f in files]
    outlines_cached = store.get_many(OUTLINE_KIND, outline_keys)
    # an outline fitted to its cap depends on the task only through the names it mentions that the
    # outline holds: kept under those; the others need the token counts of each outline's lines
    fitted_keys = {
        okey: _fitted_key(tokenizer_name, okey, text, names)
        for okey in outline_keys
        if (text := outlines_cached.get(okey)) is not None
    }
    fitted_cached = store.get_many(FITTED_KIND, list(fitted_keys.values()))
    counts_cached = store.get_many(
        OUTLINE_COUNTS_KIND,
        [f"{tokenizer_name}:{key}" for key in outline_keys if fitted_keys.get(key) not in fitted_cached],
    )
    new_fitted: dict[str, str] = {}
    new_counts: dict[str, str] = {}
    new_secrets: dict[str, str] = {}
    new_outlines: dict[str, str] = {}
    out: dict[str, Examined] = {}
    # files known to no cache yet: in worker processes when there is enough text and an idle CPU
    fresh = [
        n
        for n, (f, okey) in enumerate(zip(files, outline_keys, strict=True))
        if f.digest not in secrets_cached
        and okey not in outlines_cached
        and f"{tokenizer_name}:{okey}" not in counts_cached
    ]
    pool = None
    later: dict[int, Future[_Fresh]] = {}
    if sum(files[n].chars for n in fresh) >= POOL_MIN_CHARS and (workers := pool_workers()) > 0:
        load_scanner()  # inherited by the workers, which would each import it
        pool = fork_pool(workers, _set_worker_count, (count,))
        for n in fresh:
            try:
                later[n] = pool.submit(
                    _examine_fresh, files[n].path, files[n].text, tuple(names), n < SLICE_FILES
                )
            except BrokenExecutor:  # a worker died already: the rest is examined here
                break
    try:
        for n, (f, okey) in enumerate(zip(files, outline_keys, strict=True)):
            if progress is not None:
                progress(n, len(files))
            done: _Fresh | None = None
            if n in later:
                try:
                    done = later.pop(n).result()
                except BrokenExecutor:  # a worker died (killed, out of memory): this file is done here
                    log.warning(
                        "an examine worker process failed: examining in-process", extra={"path": f.path}
                    )
            if done is not None:
                rows, redacted, outline_text, fitted, known, def_rows = done
                findings = tuple(Finding(int(str(line)), str(kind)) for line, kind in rows)
                new_secrets[f.digest] = json.dumps([[x.line, x.kind] for x in findings])
                new_outlines[okey] = outline_text
                if early_definitions is not None and def_rows is not None:
                    early_definitions[okey] = _definitions_of(def_rows)
                if known is not None:
                    new_counts[f"{tokenizer_name}:{okey}"] = json.dumps(
                        known, separators=(",", ":"), ensure_ascii=False
                    )
                out[f.digest] = Examined(findings, f.text if redacted is None else redacted, fitted)
            else:
                out[f.digest] = _examine_here(
                    f,
                    okey,
                    secrets_cached,
                    outlines_cached,
                    counts_cached,
                    count,
                    tokenizer_name,
                    names,
                    n,
                    new_secrets,
                    new_outlines,
                    new_counts,
                    early_definitions,
                    fitted_cached,
                    new_fitted,
                )
            if on_examined is not None:
                on_examined(n, out[f.digest])
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    forget_tree()
    store.put_many(SECRETS_KIND, new_secrets)
    store.put_many(OUTLINE_KIND, new_outlines)
    store.put_many(OUTLINE_COUNTS_KIND, new_counts)
    store.put_many(FITTED_KIND, new_fitted)
    return out


def _fitted_key(tokenizer_name: str, okey: str, outline_text: str, names: Sequence[str]) -> str:
    """The key of an outline fitted to its cap: the outline, and the task's names it holds.

    `fit_outline` puts first the lines naming a name of 3+ characters; a name on such a line is in
    the outline's text, so names the text does not hold change nothing.
    """
    held = sorted({name for name in names if len(name) >= 3 and name in outline_text})
    return f"{tokenizer_name}:{OUTLINE_MAX_TOKENS}:{okey}:" + "\0".join(held)


def _set_worker_count(count: Counter) -> None:
    global _worker_count
    _worker_count = count


def _examine_fresh(path: str, text: str, names: Sequence[str], with_definitions: bool) -> _Fresh:
    """What `examine` computes for a file no cache knows, in a worker process (`_worker_count` set)."""
    assert _worker_count is not None
    findings = find_secrets(path, text)
    full = redact(text, findings)
    outline_text = make_outline(path, full)
    def_rows = [_as_row(d) for d in definitions(path, text)] if with_definitions and full is text else None
    memo = _CountMemo(_worker_count, {})
    fitted = fit_outline(outline_text, OUTLINE_MAX_TOKENS, memo, names)
    rows: list[list[object]] = [[x.line, x.kind] for x in findings]
    return (
        rows,
        None if full is text else full,
        outline_text,
        fitted,
        memo.known if memo.fresh else None,
        def_rows,
    )


def _examine_here(
    f: SourceFile,
    okey: str,
    secrets_cached: Mapping[str, str],
    outlines_cached: Mapping[str, str],
    counts_cached: Mapping[str, str],
    count: Counter,
    tokenizer_name: str,
    names: Sequence[str],
    n: int,
    new_secrets: dict[str, str],
    new_outlines: dict[str, str],
    new_counts: dict[str, str],
    early_definitions: dict[str, tuple[Definition, ...]] | None,
    fitted_cached: Mapping[str, str] | None = None,
    new_fitted: dict[str, str] | None = None,
) -> Examined:
    """One file examined in this process, from the cache where it knows the file."""
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
        if early_definitions is not None and n < SLICE_FILES and full is f.text:
            early_definitions[okey] = definitions(f.path, f.text)  # the tree just parsed
    fkey = _fitted_key(tokenizer_name, okey, outline_text, names)
    fitted_text = fitted_cached.get(fkey) if fitted_cached is not None else None
    if fitted_text is not None:
        return Examined(findings, full, fitted_text)
    ckey = f"{tokenizer_name}:{okey}"
    memo = _CountMemo(count, _json_counts(counts_cached.get(ckey)))
    fitted = fit_outline(outline_text, OUTLINE_MAX_TOKENS, memo, names)
    if memo.fresh:
        new_counts[ckey] = json.dumps(memo.known, separators=(",", ":"), ensure_ascii=False)
    if new_fitted is not None:
        new_fitted[fkey] = fitted
    return Examined(findings, full, fitted)


def slice_options(
    files: Sequence[SourceFile],
    examined: Mapping[str, Examined],
    store: PackCache,
    query: Mapping[str, float],
    clues: TaskClues,
    early_definitions: Mapping[str, tuple[Definition, ...]] | None = None,
) -> dict[int, list[SliceOption]]:
    """The slices of each size of each file (by position in `files`); files without definitions get none.

    `early_definitions`: definitions `examine` found already (by this function's cache key).
    """
    keys = [f"{f.digest}:{_suffix(f.path)}" for f in files]
    cached_defs = store.get_many(DEFINITIONS_KIND, keys)
    cached_terms = store.get_many(UNIT_TERMS_KIND, keys)
    fresh_defs: dict[str, str] = {}
    fresh_terms: dict[str, str] = {}
    prepared: list[
        tuple[int, tuple[Definition, ...], list[str], dict[int, str], dict[int, dict[str, int]]]
    ] = []
    for n, (f, key) in enumerate(zip(files, keys, strict=True)):
        defs = _load_definitions(cached_defs.get(key))
        if defs is None:
            early = early_definitions.get(key) if early_definitions is not None else None
            defs = early if early is not None else definitions(f.path, f.text)
            fresh_defs[key] = json.dumps([list(_as_row(d)) for d in defs], separators=(",", ":"))
        if not defs:
            continue
        lines = examined[f.digest].full.splitlines()
        own = own_texts(lines, defs)
        terms = _load_terms(cached_terms.get(key))
        if terms is None or set(terms) != set(own):
            terms = {i: text_terms(text) for i, text in own.items()}
            fresh_terms[key] = json.dumps({str(i): t for i, t in terms.items()}, separators=(",", ":"))
        prepared.append((n, defs, lines, own, terms))
    forget_tree()
    store.put_many(DEFINITIONS_KIND, fresh_defs)
    store.put_many(UNIT_TERMS_KIND, fresh_terms)
    idf, average = corpus_statistics([t for *_, terms in prepared for t in terms.values()], query)
    out: dict[int, list[SliceOption]] = {}
    for n, defs, lines, own, terms in prepared:
        joined = joined_namesakes(defs, lines)
        ranked = order_definitions(files[n].path, defs, own, terms, query, clues, idf, average, joined)
        if not ranked:
            continue
        top_weight = ranked[0][1]
        weights = [w**SHARE_POWER if w >= SHARE_MIN_RATIO * top_weight else 0.0 for _, w in ranked]
        total = sum(weights[:SHARE_OF_BEST] if SHARE_OF_BEST else weights) or 1.0
        options: list[SliceOption] = []
        chosen: list[int] = []
        outline = examined[files[n].digest].outline
        for size in SIZES:
            if size > len(ranked):
                break
            chosen = [i for i, _ in ranked[:size]]
            options.append(_option(lines, defs, chosen, outline, sum(weights[:size]) / total, joined))
        whole = _class_of(defs, ranked, weights, len(lines)) if CLASS_OPTION else None
        if whole is not None and chosen:
            # the long class the task is most about, whole, on top of the largest size: code
            # added to or changed in a class's body between its methods is shown only this way
            inside = {i for i in range(len(defs)) if defs[whole].start <= defs[i].start <= defs[whole].end}
            weight = sum(w for (i, _), w in zip(ranked, weights, strict=True) if i in inside or i in chosen)
            picked = [*(i for i in chosen if i not in inside), whole]
            options.append(_option(lines, defs, picked, outline, weight / total, joined))
        out[n] = options
    return out


def _option(
    lines: Sequence[str],
    defs: Sequence[Definition],
    picked: Sequence[int],
    outline: str,
    share: float,
    joined: Collection[str],
) -> SliceOption:
    """The slices option showing the `picked` definitions whole, with its share of relevance."""
    picked = with_namesakes(defs, picked, joined)
    body = render_slices(lines, defs, picked, outline)
    shown = tuple(Slice(defs[i].qualname, defs[i].start, defs[i].end) for i in sorted(picked))
    return SliceOption(body, shown, share)


def _class_of(
    defs: Sequence[Definition],
    ranked: Sequence[tuple[int, float]],
    weights: Sequence[float],
    total_lines: int,
) -> int | None:
    """The outermost long class (not ranked on its own) whose definitions weigh most, if it is at most
    CLASS_OPTION_MAX_SHARE of the file's lines (a longer one is nearly the whole file: `full`)."""
    held: dict[int, float] = {}
    for (i, _), weight in zip(ranked, weights, strict=True):
        outer: int | None = None
        parent = defs[i].parent
        while parent is not None and not defs[parent].unit:
            outer = parent
            parent = defs[parent].parent
        if outer is not None and parent is None:  # not inside a function or a short class
            held[outer] = held.get(outer, 0.0) + weight
    if not held:
        return None
    best = max(held, key=lambda c: (held[c], -c))
    d = defs[best]
    return best if d.end - d.start + 1 <= CLASS_OPTION_MAX_SHARE * total_lines else None


def _as_row(d: Definition) -> tuple[object, ...]:
    return (d.name, d.qualname, d.start, d.header_end, d.end, d.parent, d.unit)


def _definitions_of(rows: Sequence[Sequence[object]]) -> tuple[Definition, ...]:
    return tuple(
        Definition(
            str(a), str(b), int(str(c)), int(str(d)), int(str(e)), None if p is None else int(str(p)), bool(u)
        )
        for a, b, c, d, e, p, u in rows
    )


def _load_definitions(raw: str | None) -> tuple[Definition, ...] | None:
    if raw is None:
        return None
    try:
        return tuple(
            Definition(str(a), str(b), int(c), int(d), int(e), None if p is None else int(p), bool(u))
            for a, b, c, d, e, p, u in json.loads(raw)
        )
    except (ValueError, TypeError):
        return None


def _load_terms(raw: str | None) -> dict[int, dict[str, int]] | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return {int(k): dict(v) for k, v in data.items()}
    except (ValueError, TypeError, AttributeError):
        return None


class _CountMemo:
    """A token counter that remembers (and starts from) the counts of texts it has seen."""

    def __init__(self, count_many: Counter, known: dict[str, int]) -> None:
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
