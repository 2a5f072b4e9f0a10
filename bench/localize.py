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
import json
import math
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


def baseline_shown(tree: Path, task: str, budgets: Sequence[int], count: Any) -> dict[int, list[str]]:
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
    return shown


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
    for budget in budgets:
        started = time.perf_counter()
        # the oracle gives the gold files as --include globs: ranked first, the rest unchanged, so
        # it measures the selection and rendering with a perfect ranking
        result = tp.pack(tree, task, budget, MODEL, cache=cache, include=gold if oracle else ())
        elapsed = time.perf_counter() - started
        assert result.tokens == tokenizer.count(result.text) <= budget, "budget broken"
        full = [f.path for f in result.files if f.tier == "full"]
        outline = [f.path for f in result.files if f.tier == "outline"]
        ranks = {f.path: n for n, f in enumerate(sorted(result.files, key=lambda f: -f.score))}
        out["pack"][str(budget)] = {
            "tokens": result.tokens,
            "seconds": round(elapsed, 3),
            "full_recall": _recall(gold, full),
            "any_recall": _recall(gold, full + outline),
            "gold_tiers": {g: next((f.tier for f in result.files if f.path == g), "omitted") for g in gold},
            "gold_rank": {g: ranks.get(g) for g in gold},
        }
    shown = baseline_shown(tree, task, budgets, tokenizer.count)
    for budget in budgets:
        out["bm25"][str(budget)] = {
            "full_recall": _recall(gold, shown[budget]),
            "any_recall": _recall(gold, shown[budget]),
        }
    return out


def _recall(gold: Sequence[str], shown: Sequence[str]) -> float:
    return sum(1 for g in gold if g in set(shown)) / len(gold) if gold else 0.0


def summarise(results: Sequence[dict[str, Any]], budgets: Sequence[int]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for method in ("pack", "bm25"):
        for kind in ("full", "any"):
            for budget in budgets:
                recalls = [r[method][str(budget)][f"{kind}_recall"] for r in results]
                n = len(recalls) or 1
                summary[f"{method}/{kind}/{budget}"] = {
                    "avg": round(100 * sum(recalls) / n, 2),
                    "all": round(100 * sum(1 for x in recalls if x == 1.0) / n, 2),
                    "any": round(100 * sum(1 for x in recalls if x > 0) / n, 2),
                }
    return summary


def markdown(
    summary: dict[str, Any], budgets: Sequence[int], n: int, command: str, oracle: bool = False
) -> str:
    lines = [
        f"# Localization on {n} SWE-bench dev instances (cl100k_base, budget includes the task)",
        "",
        f"Command: `{command}`",
        "",
        "| method | shown | "
        + " | ".join(f"{m} @{b // 1000}k" for m in ("Avg", "All", "Any") for b in budgets)
        + " |",
        "|---|---|" + "---:|" * (3 * len(budgets)),
    ]
    pack_label = "tokenpilot pack, oracle ranking (gold files included)" if oracle else "tokenpilot pack"
    for method, label in (("bm25", "SWE-bench BM25 baseline"), ("pack", pack_label)):
        for kind in ("full", "any"):
            if method == "bm25" and kind == "any":
                continue
            cells = [
                f"{summary[f'{method}/{kind}/{b}'][m]:.2f}" for m in ("avg", "all", "any") for b in budgets
            ]
            shown = "full text" if kind == "full" else "any tier"
            lines.append(f"| {label} | {shown} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=Path, default=DEFAULT_INSTANCES)
    parser.add_argument("--repo-map", type=Path, required=True)
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
                f"(bm25 {result['bm25'][str(b)]['full_recall']:.1f})"
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
