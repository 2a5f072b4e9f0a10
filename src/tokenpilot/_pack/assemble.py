"""From a ranking to the packed text: options per file, the knapsack, rendering, the exact check.

Each file offers `path`; the files looked at closely (`examine`) also `outline` (and a brief
outline, the outline cut to BRIEF_MAX_TOKENS, when it is longer) and `full`, and the best of those
with definitions `slices` of several sizes. Value = (score / best score)³ × the
tier's utility; cost = the block's exact token count plus the file's tree line. `select` chooses
(monotone in the budget), `render` writes the text, and the text is counted exactly: while it is
over (tokens can merge across block boundaries) the least efficient choices are stepped down.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from tokenpilot._exceptions import BudgetError
from tokenpilot._pack import render as rendering
from tokenpilot._pack.cache import PackCache
from tokenpilot._pack.discover import SourceFile
from tokenpilot._pack.examine import (
    SLICE_FILES,
    Examined,
    SliceOption,
    deep_candidates,
    examine,
    slice_options,
)
from tokenpilot._pack.outline import fit_outline
from tokenpilot._pack.result import PackedFile, Redaction
from tokenpilot._pack.select import Choice, Option, select
from tokenpilot._pack.slices import Definition, Slice, TaskClues
from tokenpilot._tokens import Tokenizer
from tokenpilot._tokens._tokenizer import TiktokenTokenizer

# value of showing a file at a tier, as a share of the value of its full text; slices are worth
# SLICES_BASE + SLICES_SPAN × the share of the file's (squared) definition relevance they show
TIER_UTILITY: dict[str, float] = {"full": 1.0, "outline": 0.45, "path": 0.02}
# a brief outline (the outline cut to BRIEF_MAX_TOKENS: the definitions the task names, then
# top-level ones) is worth BRIEF_UTILITY: breadth for a fraction of an outline's cost
BRIEF_MAX_TOKENS = 80
BRIEF_UTILITY = 0.35
SLICES_BASE = 0.45
SLICES_SPAN = 0.35
OUTLINE_WHEN_SLICED = False  # False: a file with slices offers its brief outline, not the outline
# relevance is sharpened before it becomes value, so the best files win their full text over
# outlines of many middling ones: value = (score / best score) ** RELEVANCE_SHARPNESS
RELEVANCE_SHARPNESS = 3.0
_REPAIR_ROUNDS = 50
_BATCH_MIN_CHARS = 400_000
_LATER_MIN_CHARS = 2_000  # shorter texts are counted at once: a thread's round trip costs more
_COUNT_THREADS = 2
COUNT_KIND = "count:1"
TREE_COUNTS_KIND = "tree-line-counts:1"
BLOCK_COUNT_KIND = "block-count:1"


@dataclass(frozen=True, slots=True)
class Assembled:
    text: str
    tokens: int
    files: tuple[PackedFile, ...]
    redacted: tuple[Redaction, ...]
    dropped: dict[str, str]
    examined: int


@dataclass(frozen=True, slots=True)
class _Shown:
    tier: str
    body: str
    slices: tuple[Slice, ...] = ()


class _Counts:
    """Exact token counts of long texts in background threads, when the tokenizer is a local tiktoken.

    tiktoken's encoder releases the GIL: the full texts of the files looked at closely are counted
    while the main thread scans and outlines the next files, and blocks are counted two at a time.
    Other tokenizers count at once, in the caller's thread.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self._pool: ThreadPoolExecutor | None = None
        self._threaded = isinstance(tokenizer, TiktokenTokenizer)

    def later(self, text: str) -> Future[int]:
        """The count of `text`, now or in a background thread."""
        if not self._threaded or len(text) < _LATER_MIN_CHARS:
            done: Future[int] = Future()
            done.set_result(self.tokenizer.count(text))
            return done
        if self._pool is None:
            self._pool = ThreadPoolExecutor(_COUNT_THREADS, thread_name_prefix="tokenpilot-count")
        # encode, not count: count's memo of recent texts is not shared across threads
        return self._pool.submit(lambda: len(self.tokenizer.encode(text)))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class Assembler:
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
        self._counts = _Counts(tokenizer)

    def count_many(self, texts: Sequence[str]) -> list[int]:
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
        self,
        order: Sequence[int],
        scores: Sequence[float],
        query: Mapping[str, float],
        clues: TaskClues,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> Assembled:
        try:
            return self._run(order, scores, query, clues, progress)
        finally:
            self._counts.close()

    def _run(
        self,
        order: Sequence[int],
        scores: Sequence[float],
        query: Mapping[str, float],
        clues: TaskClues,
        progress: Callable[[str, int, int], None] | None,
    ) -> Assembled:
        fixed = self.tokenizer.count(self._render([], self.budget))
        if fixed > self.allowed:
            raise BudgetError(
                f"the task and the pack's frame need {fixed:,} tokens, over the budget of {self.budget:,}"
                + ("" if self.allowed == self.budget else f" ({self.allowed:,} after the estimate margin)")
            )
        paths = [f.path for f in self.files]
        path_costs = self._tree_line_costs(paths)
        deep = deep_candidates(self.files, order, scores, self.budget)
        full_keys = [self._full_key(paths[i], self.files[i].digest) for i in deep]
        known_full = self.store.get_many(COUNT_KIND, full_keys)
        full_later: dict[int, Future[int]] = {}
        early_definitions: dict[str, tuple[Definition, ...]] = {}

        def count_full(n: int, e: Examined) -> None:
            # counted in the background while the next files are examined
            if full_keys[n] not in known_full and deep[n] not in full_later:
                block = rendering.file_block(self.fmt, paths[deep[n]], "full", e.full)
                full_later[deep[n]] = self._counts.later(block)

        examined = examine(
            [self.files[i] for i in deep],
            self.store,
            self.count_many,
            self.tokenizer.name,
            self.names,
            (lambda done, total: progress("outline", done, total)) if progress else None,
            on_examined=count_full,
            early_definitions=early_definitions,
        )
        dropped: dict[str, str] = {}
        kept: list[int] = []
        for i in deep:
            e = examined[self.files[i].digest]
            if e.findings and self.secrets_mode == "drop":
                dropped[paths[i]] = f"secrets found ({len(e.findings)} lines): dropped"
                continue
            kept.append(i)
        briefs: dict[int, str] = {}
        if BRIEF_MAX_TOKENS:
            for i in kept:
                outline = examined[self.files[i].digest].outline
                brief = fit_outline(outline, BRIEF_MAX_TOKENS, self.count_many, self.names)
                if brief != outline:
                    briefs[i] = brief
        sliced = kept[:SLICE_FILES]
        by_slice = slice_options(
            [self.files[i] for i in sliced], examined, self.store, query, clues, early_definitions
        )
        slices_of: dict[int, list[SliceOption]] = {sliced[n]: opts for n, opts in by_slice.items()}
        shown_as: dict[tuple[int, str], _Shown] = {}
        blocks: list[tuple[int, str, str]] = []  # (file, option name, block text)
        for i in kept:
            e = examined[self.files[i].digest]
            shown_as[(i, "outline")] = _Shown("outline", e.outline)
            shown_as[(i, "full")] = _Shown("full", e.full)
            blocks.append((i, "outline", rendering.file_block(self.fmt, paths[i], "outline", e.outline)))
            if i in briefs:
                shown_as[(i, "brief")] = _Shown("outline", briefs[i])
                blocks.append((i, "brief", rendering.file_block(self.fmt, paths[i], "outline", briefs[i])))
            for size, option in enumerate(slices_of.get(i, []), start=1):
                name = f"slices:{size}"
                shown_as[(i, name)] = _Shown("slices", option.body, option.slices)
                blocks.append((i, name, rendering.file_block(self.fmt, paths[i], "slices", option.body)))
        block_costs = self._block_costs([text for _, _, text in blocks])
        full_costs = self._full_costs(kept, full_keys, deep, known_full, full_later)
        costs: dict[tuple[int, str], int] = {}
        for (i, name, _), cost in zip(blocks, block_costs, strict=True):
            costs[(i, name)] = cost
        for i, cost in zip(kept, full_costs, strict=True):
            costs[(i, "full")] = cost
        kept_set = set(kept)
        best = max((scores[i] for i in order[:1]), default=0.0) or 1.0
        choices: list[Choice] = []
        for position, i in enumerate(order):
            if paths[i] in dropped:
                continue
            # files with no score still come, last and in rank order, when there is room
            value = (max(scores[i], 0.0) / best) ** RELEVANCE_SHARPNESS
            value += 1e-9 * (len(order) - position)
            options = [Option("path", path_costs[i], value * TIER_UTILITY["path"])]
            if i in kept_set:
                # in the order the file climbs: the brief outline is a cut of the outline
                if (i, "brief") in costs:
                    brief_cost = path_costs[i] + costs[(i, "brief")]
                    options.append(Option("brief", brief_cost, value * BRIEF_UTILITY))
                # an outline no longer than a brief one stays, so a sliced file still has a small tier
                if OUTLINE_WHEN_SLICED or not slices_of.get(i) or i not in briefs:
                    outline_cost = path_costs[i] + costs[(i, "outline")]
                    options.append(Option("outline", outline_cost, value * TIER_UTILITY["outline"]))
                for size, option in enumerate(slices_of.get(i, []), start=1):
                    utility = SLICES_BASE + SLICES_SPAN * option.share
                    options.append(
                        Option(
                            f"slices:{size}", path_costs[i] + costs[(i, f"slices:{size}")], value * utility
                        )
                    )
                options.append(
                    Option("full", path_costs[i] + costs[(i, "full")], value * TIER_UTILITY["full"])
                )
            choices.append(Choice(i, tuple(options)))
        chosen = select(choices, self.allowed - fixed)
        rank_of = {i: r for r, i in enumerate(order)}
        for _ in range(_REPAIR_ROUNDS):
            ordered = sorted(chosen.items(), key=lambda item: rank_of[item[0]])
            views = [self._view(shown_as, i, option.tier) for i, option in ordered]
            text, tokens = self._fit_header(
                [
                    rendering.ShownFile(paths[i], v.tier, v.body)
                    for (i, _), v in zip(ordered, views, strict=True)
                ]
            )
            if tokens <= self.allowed:
                break
            self._downgrade(chosen, choices, tokens - self.allowed)
        else:  # pragma: no cover - each round removes at least one token's worth of choices
            raise BudgetError(f"could not fit the pack into {self.budget:,} tokens")
        files = tuple(
            PackedFile(paths[i], v.tier, option.cost, scores[i], v.slices)
            for (i, option), v in zip(ordered, views, strict=True)
        )
        redacted = tuple(
            Redaction(paths[i], finding.line, finding.kind)
            for (i, option), v in sorted(zip(ordered, views, strict=True), key=lambda item: paths[item[0][0]])
            if v.tier != "path"
            for finding in examined[self.files[i].digest].findings
            if v.tier == "full" or f"{finding.line}│" in v.body
        )
        return Assembled(text, tokens, files, redacted, dropped, len(deep))

    @staticmethod
    def _view(shown_as: Mapping[tuple[int, str], _Shown], index: int, option: str) -> _Shown:
        if option == "path":
            return _Shown("path", "")
        return shown_as[(index, option)]

    def _tree_line_costs(self, paths: Sequence[str]) -> list[int]:
        """Tokens of each path's tree line; one cache entry per tree (a tokenizer call per line is slow)."""
        lines = [rendering.tree_line(p) for p in paths]
        key = (
            f"{self.tokenizer.name}:"
            + hashlib.blake2b("\0".join(lines).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
        )
        raw = self.store.get_many(TREE_COUNTS_KIND, [key]).get(key)
        if raw is not None:
            try:
                counts = json.loads(raw)
                if isinstance(counts, list) and len(counts) == len(lines):
                    return [int(c) for c in counts]
            except (ValueError, TypeError):
                pass
        counted = self.count_many(lines)
        self.store.put_many(TREE_COUNTS_KIND, {key: json.dumps(counted, separators=(",", ":"))})
        return counted

    def _block_costs(self, blocks: Sequence[str]) -> list[int]:
        """Exact tokens of each block, from the cache when the same block was counted before."""
        keys = [
            f"{self.tokenizer.name}:"
            + hashlib.blake2b(b.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
            for b in blocks
        ]
        cached = self.store.get_many(BLOCK_COUNT_KIND, keys)
        missing = [n for n, key in enumerate(keys) if key not in cached]
        later = [self._counts.later(blocks[n]) for n in missing]
        found = {keys[n]: count.result() for n, count in zip(missing, later, strict=True)}
        self.store.put_many(BLOCK_COUNT_KIND, {key: str(count) for key, count in found.items()})
        return [found[key] if key in found else int(cached[key]) for key in keys]

    def _full_key(self, path: str, digest: str) -> str:
        return f"{self.tokenizer.name}:{self.fmt}:{digest}:{path}"

    def _full_costs(
        self,
        kept: Sequence[int],
        keys: Sequence[str],
        deep: Sequence[int],
        known: Mapping[str, str],
        later: Mapping[int, Future[int]],
    ) -> list[int]:
        """Tokens of each kept file's full-text block: from the cache, else as counted during examine."""
        key_of = dict(zip(deep, keys, strict=True))
        fresh = {key_of[i]: later[i].result() for i in kept if key_of[i] not in known}
        self.store.put_many(COUNT_KIND, {key: str(count) for key, count in fresh.items()})
        return [fresh[key_of[i]] if key_of[i] in fresh else int(known[key_of[i]]) for i in kept]

    def _fit_header(self, shown: Sequence[rendering.ShownFile]) -> tuple[str, int]:
        """Render with the header's token figure equal to the text's real count (a fixed point)."""
        omitted = len(self.files) - len(shown)

        def parts(claimed: int) -> tuple[str, str]:
            return rendering.render_parts(
                self.fmt, budget=self.budget, tokens=claimed, task=self.task, files=shown, omitted=omitted
            )

        # tiktoken starts a piece where the rest starts: only the header is counted again per figure
        rest_tokens: int | None = None
        if isinstance(self.tokenizer, TiktokenTokenizer):
            rest_tokens = self.tokenizer.count(parts(self.budget)[1])

        def text_and_count(claimed: int) -> tuple[str, int]:
            head, rest = parts(claimed)
            if rest_tokens is not None:
                return head + rest, self.tokenizer.count(head) + rest_tokens
            return head + rest, self.tokenizer.count(head + rest)

        claimed = self.budget
        text, tokens = text_and_count(claimed)
        for _ in range(5):
            if tokens == claimed:
                break
            claimed = tokens
            text, tokens = text_and_count(claimed)
        if tokens != claimed:
            # the figure's own digits keep changing the count: claim the budget instead (an upper bound)
            text, tokens = text_and_count(self.budget)
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
