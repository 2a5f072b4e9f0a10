"""Localization benchmark: does the packed context show the files the gold patch changes?

For each SWE-bench instance: materialise `base_commit`, pack with task = problem statement at each
budget (model gpt-4, i.e. cl100k_base, as the SWE-bench paper), and measure recall of the gold files
shown in full text and shown at any tier (full or outline). The SWE-bench BM25 baseline runs on the
same instances and budgets in the same run. Metrics as defined in ../shared/bench/README.md.

    python bench/localize.py --instances ../shared/bench/swebench_dev.jsonl --repo-map MAP.json
        [--budgets 13000,27000,50000] [--limit N] [--repos sympy/sympy,psf/requests] [--jobs 2]
        [--oracle --out bench/results/localize_oracle]

MAP.json maps "owner/name" to a local git clone (a bare one is fine), e.g.
{"sympy/sympy": "/work/.mirror/sympy+sympy/repo"}. Trees are extracted under --trees (default
/tmp/tokenpilot-trees) and reused. Results: bench/results/localize.json and .md.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import json
import logging
import math
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tokenpilot as tp
from _materialise import materialise
from tokenpilot._walk import list_files, read_text

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCES = REPO_ROOT.parent / "shared" / "bench" / "swebench_dev.jsonl"
MODEL = "gpt-4"
# gpt-4 (cl100k, as the paper) is used past its 8k window on purpose: no warning for it
logging.getLogger("tokenpilot").setLevel(logging.ERROR)
_GOLD = re.compile(r"^diff --git a/(\S+) b/", re.MULTILINE)

# --- the SWE-bench BM25 baseline -------------------------------------------------------------------
# Documents: the repository's Python files except tests (SWE-bench's make_datasets/bm25_retrieval.py
# indexes .py files and leaves tests out), each as its path plus contents; query: the problem
# statement. Pyserini's BM25 parameters (k1 = 0.9, b = 0.4) over lowercased alphanumeric words minus
# English stopwords. Context: the task, then whole files in rank order as "[start of PATH]\n…\n[end
# of PATH]", each file that would overflow the budget skipped.
_BASELINE_WORD = re.compile(r"[a-z0-9]+")
_BASELINE_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)
_BASELINE_K1 = 0.9
_BASELINE_B = 0.4
_BASELINE_MAX_CONSIDERED = 600


def _baseline_terms(text: str) -> Counter[str]:
    return Counter(w for w in _BASELINE_WORD.findall(text.lower()) if w not in _BASELINE_STOP)


def _is_test(path: str) -> bool:
    return bool(re.search(r"(^|/)(tests?|testing)/|(^|/)test_[^/]*$|_test\.py$|conftest\.py$", path))


def baseline_shown(
    tree: Path, task: str, budgets: Sequence[int], count: Any
) -> tuple[dict[int, list[str]], str | None]:
    """The files the baseline shows at each budget, and its first-ranked file."""
    docs: list[tuple[str, str, Counter[str]]] = []
    for path in list_files(tree):
        relative = path.relative_to(tree).as_posix()
        if not relative.endswith(".py") or _is_test(relative):
            continue
        read = read_text(path)
        if read.text is None:
            continue
        docs.append((relative, read.text, _baseline_terms(relative + "\n" + read.text)))
    query = _baseline_terms(task)
    n = len(docs)
    average = sum(sum(d[2].values()) for d in docs) / max(n, 1)
    df = Counter(t for _, _, terms in docs for t in query if t in terms)
    scores = []
    for relative, _, terms in docs:
        length = sum(terms.values())
        total = 0.0
        for term, qtf in query.items():
            tf = terms.get(term, 0)
            if tf:
                idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                total += (
                    qtf
                    * idf
                    * tf
                    * (_BASELINE_K1 + 1)
                    / (tf + _BASELINE_K1 * (1 - _BASELINE_B + _BASELINE_B * length / average))
                )
        scores.append((-total, relative))
    ranked = sorted(range(n), key=lambda i: scores[i])[:_BASELINE_MAX_CONSIDERED]
    task_tokens = count(task + "\n")
    block_tokens = {
        i: count(f"[start of {docs[i][0]}]\n{docs[i][1]}\n[end of {docs[i][0]}]\n") for i in ranked
    }
    shown: dict[int, list[str]] = {}
    for budget in budgets:
        used = task_tokens
        files = []
        for i in ranked:
            if used + block_tokens[i] <= budget:
                used += block_tokens[i]
                files.append(docs[i][0])
        shown[budget] = files
    return shown, (docs[ranked[0]][0] if ranked else None)


def _apply_settings() -> None:
    """Module settings to try, `TOKENPILOT_BENCH_SET='{"assemble.SLICES_SPAN": 0.5}'` (iteration only)."""
    import importlib

    for key, value in json.loads(os.environ.get("TOKENPILOT_BENCH_SET") or "{}").items():
        module, _, name = key.rpartition(".")
        setattr(importlib.import_module(f"tokenpilot._pack.{module}"), name, value)


# --- one instance -------------------------------------------------------------------------------------
def run_instance(
    row: dict[str, Any], repo_path: str, trees: str, budgets: Sequence[int], cache: str, oracle: bool = False
) -> dict[str, Any]:
    tree = materialise(
        Path(repo_path),
        row["base_commit"],
        Path(trees) / f"{row['repo'].replace('/', '+')}-{row['base_commit'][:12]}",
    )
    gold = sorted(set(_GOLD.findall(row["patch"])))
    task = row["problem_statement"]
    tokenizer = tp.tokenizer_for(MODEL)
    out: dict[str, Any] = {
        "instance_id": row["instance_id"],
        "repo": row["repo"],
        "gold": gold,
        "pack": {},
        "bm25": {},
    }
    _apply_settings()
    sites = edit_sites(tree, row["patch"])
    out["edit_sites"] = [{k: v for k, v in s.items() if k != "segment"} for s in sites]
    for budget in budgets:
        started = time.perf_counter()
        # the oracle gives the gold files as --include globs: ranked first, the rest unchanged, so
        # it measures the selection and rendering with a perfect ranking
        result = tp.pack(tree, task, budget, MODEL, cache=cache, include=gold if oracle else ())
        elapsed = time.perf_counter() - started
        assert result.tokens == tokenizer.count(result.text) <= budget, "budget broken"
        full = [f.path for f in result.files if f.tier == "full"]
        outline = [f.path for f in result.files if f.tier in ("outline", "slices")]
        ranks = {f.path: n for n, f in enumerate(sorted(result.files, key=lambda f: -f.score))}
        text_lines = result.text.split("\n")
        at = shown_lines(result.text)
        bodies = [body_shown(s["segment"], at, text_lines) for s in sites]
        heads = [bool(s["segment"]) and s["segment"][0].rstrip() in at for s in sites]
        out["pack"][str(budget)] = {
            "tokens": result.tokens,
            "seconds": round(elapsed, 3),
            "full_recall": _recall(gold, full),
            "any_recall": _recall(gold, full + outline),
            "gold_tiers": {g: next((f.tier for f in result.files if f.path == g), "omitted") for g in gold},
            "gold_rank": {g: ranks.get(g) for g in gold},
            "rank_first": 1.0
            if result.files and max(result.files, key=lambda f: f.score).path in gold
            else 0.0,
            "site_recall": (sum(bodies) / len(bodies)) if bodies else None,
            "site_head_recall": (sum(heads) / len(heads)) if heads else None,
            "tiers": dict(Counter(f.tier for f in result.files)),
        }
    if os.environ.get("TOKENPILOT_BENCH_NO_BASELINE"):  # iteration only: the tables leave it out
        del out["bm25"]
        return out
    shown, first = baseline_shown(tree, task, budgets, tokenizer.count)
    for budget in budgets:
        files = shown[budget]
        covered = [s["path"] in files for s in sites]  # a whole file shows every definition in it
        out["bm25"][str(budget)] = {
            "full_recall": _recall(gold, files),
            "any_recall": _recall(gold, files),
            "rank_first": 1.0 if first in gold else 0.0,
            "site_recall": (sum(covered) / len(covered)) if covered else None,
            "site_head_recall": (sum(covered) / len(covered)) if covered else None,
        }
    return out


def _recall(gold: Sequence[str], shown: Sequence[str]) -> float:
    return sum(1 for g in gold if g in set(shown)) / len(gold) if gold else 0.0


# --- edit sites: the definitions the gold patch changes ---------------------------------------------
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")
_GUTTER = re.compile(r"^\d+│")


def changed_lines(patch: str) -> dict[str, set[int]]:
    """Old-file line numbers each file's patch touches; an added line counts the lines around it."""
    out: dict[str, set[int]] = {}
    path: str | None = None
    old = 0
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            match = _GOLD.match(line)
            path = match.group(1) if match else None
            continue
        hunk = _HUNK.match(line)
        if hunk:
            old = int(hunk.group(1))
            continue
        if path is None or line.startswith(("---", "+++", "index ", "new file", "deleted file")):
            continue
        if line.startswith("-"):
            out.setdefault(path, set()).add(old)
            old += 1
        elif line.startswith("+"):
            # an insertion between old lines old-1 and old
            out.setdefault(path, set()).update({max(old - 1, 1), old})
        elif line.startswith(" "):
            old += 1
    return out


def edited_definitions(source: str, lines: set[int]) -> list[tuple[str, int, int]]:
    """(qualified name, first line with decorators, last line) of the innermost def/class at each line."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    spans: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                name = prefix + child.name
                spans.append((name, start, child.end_lineno or child.lineno))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    found: dict[tuple[str, int, int], None] = {}
    for line in sorted(lines):
        inside = [s for s in spans if s[1] <= line <= s[2]]
        if inside:
            found[min(inside, key=lambda s: s[2] - s[1])] = None
    return list(found)


def shown_lines(text: str) -> dict[str, list[int]]:
    """Each line of the packed text (gutter removed, right-stripped) -> where it occurs."""
    at: dict[str, list[int]] = {}
    for n, line in enumerate(text.split("\n")):
        at.setdefault(_GUTTER.sub("", line, count=1).rstrip(), []).append(n)
    return at


def body_shown(segment: Sequence[str], at: dict[str, list[int]], text_lines: Sequence[str]) -> bool:
    """Whether the segment's lines appear in the packed text one after another."""
    if not segment:
        return False
    for begin in at.get(segment[0].rstrip(), []):
        if begin + len(segment) > len(text_lines):
            continue
        if all(
            _GUTTER.sub("", text_lines[begin + k], count=1).rstrip() == segment[k].rstrip()
            for k in range(1, len(segment))
        ):
            return True
    return False


def edit_sites(tree: Path, patch: str) -> list[dict[str, Any]]:
    """The edited Python definitions of a gold patch, read at the base commit."""
    sites: list[dict[str, Any]] = []
    for path, lines in sorted(changed_lines(patch).items()):
        if not path.endswith(".py"):
            continue
        try:
            source = (tree / path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        source_lines = source.splitlines()
        for name, start, end in edited_definitions(source, lines):
            sites.append(
                {
                    "path": path,
                    "name": name,
                    "start": start,
                    "end": end,
                    "segment": source_lines[start - 1 : end],
                }
            )
    return sites


GROUPS = (
    ("all", lambda n: True),
    ("1 file", lambda n: n == 1),
    ("2 files", lambda n: n == 2),
    ("3+ files", lambda n: n >= 3),
)


def summarise(results: Sequence[dict[str, Any]], budgets: Sequence[int]) -> dict[str, Any]:
    """Avg / All / Any of file recall (full text, any tier), edit-site All and rank-first, per group."""
    summary: dict[str, Any] = {}
    for group, keep in GROUPS:
        rows = [r for r in results if keep(len(r["gold"]))]
        for method in ("pack", "bm25"):
            if any(method not in r for r in results):
                continue
            for budget in budgets:
                cells = [r[method][str(budget)] for r in rows]
                n = len(cells) or 1
                entry: dict[str, Any] = {"n": len(cells)}
                for kind in ("full", "any"):
                    recalls = [c[f"{kind}_recall"] for c in cells]
                    entry[kind] = {
                        "avg": round(100 * sum(recalls) / n, 2),
                        "all": round(100 * sum(1 for x in recalls if x == 1.0) / n, 2),
                        "any": round(100 * sum(1 for x in recalls if x > 0) / n, 2),
                    }
                sites = [c["site_recall"] for c in cells if c.get("site_recall") is not None]
                heads = [c["site_head_recall"] for c in cells if c.get("site_head_recall") is not None]
                entry["site_n"] = len(sites)
                entry["site_all"] = round(100 * sum(1 for x in sites if x == 1.0) / (len(sites) or 1), 2)
                entry["site_head_all"] = round(100 * sum(1 for x in heads if x == 1.0) / (len(heads) or 1), 2)
                entry["rank_first"] = round(100 * sum(c.get("rank_first", 0.0) for c in cells) / n, 2)
                summary[f"{group}/{method}/{budget}"] = entry
    summary["lower_tier"] = lower_tier_count(results, budgets)
    return summary


def markdown(
    summary: dict[str, Any], budgets: Sequence[int], n: int, command: str, oracle: bool = False
) -> str:
    pack_label = "tokenpilot pack, oracle ranking (gold files included)" if oracle else "tokenpilot pack"
    labels = {"bm25": "SWE-bench BM25 baseline", "pack": pack_label}
    at = " / ".join(f"{b // 1000}k" for b in budgets)
    lines = [
        f"# Localization on {n} SWE-bench dev instances (cl100k_base, budget includes the task)",
        "",
        f"Command: `{command}`",
        "",
        f"Cells are @{at}. Edit-site All: instances with edited Python definitions whose every edited"
        " definition is shown whole; first line: its first line shown at all; rank first: the"
        " first-ranked file is a gold file.",
        "",
        "| gold files | method | n | full Avg | full All | full Any | any-tier All | any-tier Any"
        " | edit-site All (n) | edit-site first line | rank first |",
        "|---|---|---:|---|---|---|---|---|---|---|---|",
    ]
    for group, _ in GROUPS:
        for method in ("bm25", "pack"):
            if f"{group}/{method}/{budgets[0]}" not in summary:
                continue
            cells = [summary[f"{group}/{method}/{b}"] for b in budgets]

            def join(values: Sequence[float]) -> str:
                return " / ".join(f"{v:.1f}" for v in values)

            any_all = "–" if method == "bm25" else join([c["any"]["all"] for c in cells])
            any_any = "–" if method == "bm25" else join([c["any"]["any"] for c in cells])
            lines.append(
                f"| {group} | {labels[method]} | {cells[0]['n']} | {join([c['full']['avg'] for c in cells])}"
                f" | {join([c['full']['all'] for c in cells])} | {join([c['full']['any'] for c in cells])}"
                f" | {any_all} | {any_any} | {join([c['site_all'] for c in cells])} ({cells[0]['site_n']})"
                f" | {join([c['site_head_all'] for c in cells])} | {join([c['rank_first'] for c in cells])} |"
            )
    lines += [
        "",
        f"Monotone: {summary.get('lower_tier', 0)} of {n} instances show a gold file at a lower tier"
        " at a larger budget.",
    ]
    return "\n".join(lines) + "\n"


_TIER_ORDER = ("omitted", "path", "outline", "slices", "full")


def lower_tier_count(results: Sequence[dict[str, Any]], budgets: Sequence[int]) -> int:
    """Instances where some gold file is shown at a lower tier at a larger budget."""
    count = 0
    for r in results:
        for g in r["gold"]:
            tiers = [_TIER_ORDER.index(r["pack"][str(b)]["gold_tiers"][g]) for b in sorted(budgets)]
            if any(later < earlier for earlier, later in itertools.pairwise(tiers)):
                count += 1
                break
    return count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=Path, default=DEFAULT_INSTANCES)
    parser.add_argument("--repo-map", type=Path)
    parser.add_argument(
        "--summarise", type=Path, default=None, help="a results .json: recompute its tables only"
    )
    parser.add_argument("--budgets", default="13000,27000,50000")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--every", type=int, default=1, help="keep every K-th instance (a spread-out subset)")
    parser.add_argument("--repos", default=None, help="comma-separated owner/name to keep")
    parser.add_argument("--trees", default="/tmp/tokenpilot-trees")
    parser.add_argument("--cache", default="/tmp/tokenpilot-bench/pack-cache.sqlite3")
    parser.add_argument("--jobs", type=int, default=1, choices=(1, 2))
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "localize")
    parser.add_argument(
        "--oracle",
        action="store_true",
        help="pass the gold files as --include (ranked first): the bound a perfect ranking would reach",
    )
    args = parser.parse_args(argv)
    if args.summarise is not None:
        stored = json.loads(args.summarise.read_text())
        for r in stored["results"]:
            for cell in r["pack"].values():  # any tier: full, slices or outline
                tiers = cell["gold_tiers"]
                cell["any_recall"] = _recall(
                    r["gold"], [g for g, t in tiers.items() if t not in ("path", "omitted")]
                )
        summary = summarise(stored["results"], stored["budgets"])
        stored["summary"] = summary
        args.summarise.write_text(json.dumps(stored, indent=1) + "\n")
        table = markdown(
            summary, stored["budgets"], len(stored["results"]), stored["command"], stored["oracle"]
        )
        args.summarise.with_suffix(".md").write_text(table)
        print(table)
        return 0
    if args.repo_map is None:
        parser.error("--repo-map is required")
    budgets = [int(b) for b in args.budgets.split(",")]
    repo_map = json.loads(args.repo_map.read_text())
    rows = [json.loads(line) for line in args.instances.read_text().splitlines() if line.strip()]
    if args.repos:
        keep = set(args.repos.split(","))
        rows = [r for r in rows if r["repo"] in keep]
    rows = rows[:: args.every]
    if args.limit:
        rows = rows[: args.limit]
    started = time.time()
    results: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [
            pool.submit(run_instance, r, repo_map[r["repo"]], args.trees, budgets, args.cache, args.oracle)
            for r in rows
        ]
        for n, future in enumerate(futures, start=1):
            result = future.result()
            results.append(result)
            line = " ".join(
                f"{b // 1000}k:{result['pack'][str(b)]['full_recall']:.1f}"
                f"/{result['pack'][str(b)]['any_recall']:.1f}"
                f" site {result['pack'][str(b)]['site_recall']}"
                f"(bm25 {result['bm25'][str(b)]['full_recall'] if 'bm25' in result else '-'})"
                for b in budgets
            )
            print(f"[{n}/{len(rows)}] {result['instance_id']} {line}", file=sys.stderr, flush=True)
    summary = summarise(results, budgets)
    command = "python bench/localize.py " + " ".join(sys.argv[1:] if argv is None else argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(
        json.dumps(
            {
                "command": command,
                "model": MODEL,
                "budgets": budgets,
                "instances": len(results),
                "oracle": args.oracle,
                "seconds": round(time.time() - started, 1),
                "summary": summary,
                "results": results,
            },
            indent=1,
        )
        + "\n"
    )
    table = markdown(summary, budgets, len(results), command, args.oracle)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
