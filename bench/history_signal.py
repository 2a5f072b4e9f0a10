"""A signal pack does not use yet, measured alone: the task against each file's past commit messages.

For each SWE-bench instance: the commits before `base_commit` (`--commits`, no merges) give each
non-test Python file a document of the messages of the commits that touched it; BM25 (k1 1.2,
b 0.75) of the task's terms ranks the files. Printed: how often a gold file ranks first and in the
best five, and how many of the gold files the pack ranked 5th or lower (or left out) in `--results`
(a bench/localize.py results file) this ranking puts in its best five.

    python bench/history_signal.py --instances ../shared/bench/swebench_dev.jsonl \
        --repo-map MAP.json --results bench/results/localize.json [--commits 3000]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from tokenpilot._pack.lexical import part_scores
from tokenpilot._pack.paths import is_test_path
from tokenpilot._pack.terms import read_task, text_terms

_GOLD = re.compile(r"^diff --git a/(\S+) b/", re.MULTILINE)


def file_messages(repo: str, commit: str, commits: int) -> tuple[dict[str, Counter[str]], int]:
    """Each non-test Python file's terms of the messages of the commits (before `commit`) touching it,
    and how many commits were read (a mirror with part of its history stops the log early)."""
    log = subprocess.run(
        [
            "git",
            "-C",
            repo,
            "log",
            "--name-only",
            "--no-merges",
            "--format=%x00%s%n%b",
            "-n",
            str(commits),
            commit,
        ],
        capture_output=True,
        text=True,
        check=False,  # a partial history stops the log early: what was read counts
    ).stdout
    chunks = log.split("\0")[1:]
    docs: dict[str, Counter[str]] = defaultdict(Counter)
    for chunk in chunks:
        lines = chunk.split("\n")
        files = [line for line in lines if line.endswith(".py") and " " not in line]
        terms = text_terms(" ".join(line for line in lines if line not in files))
        for path in files:
            if not is_test_path(path):
                docs[path].update(terms)
    return docs, len(chunks)


def ranking(docs: dict[str, Counter[str]], task: str) -> list[str]:
    """The files by BM25 (`lexical.part_scores`) of the task's terms, each weighted 1 + ln(count),
    against their messages."""
    query = {term: 1.0 + math.log(count) for term, count in text_terms(read_task(task).text).items()}
    paths = list(docs)
    scores = part_scores([docs[path] for path in paths], query)
    return [path for _, path in sorted(zip(scores, paths, strict=True), key=lambda x: (-x[0], x[1]))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=Path, required=True)
    parser.add_argument("--repo-map", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--commits", type=int, default=3000)
    args = parser.parse_args(argv)
    repo_map = json.loads(args.repo_map.read_text())
    packed = {
        r["instance_id"]: r["pack"]["13000"]["gold_rank"]
        for r in json.loads(args.results.read_text())["results"]
    }
    first = best_five = pack_first = low = lifted = 0
    read: list[int] = []
    rows = [json.loads(line) for line in args.instances.read_text().splitlines() if line.strip()]
    for row in rows:
        docs, commits = file_messages(repo_map[row["repo"]], row["base_commit"], args.commits)
        read.append(commits)
        order = ranking(docs, row["problem_statement"])
        position = {path: k for k, path in enumerate(order)}
        gold = sorted(set(_GOLD.findall(row["patch"])))
        here = [position.get(g) for g in gold]
        there = [packed[row["instance_id"]].get(g) for g in gold]
        first += any(h == 0 for h in here)
        best_five += any(h is not None and h < 5 for h in here)
        pack_first += any(p == 0 for p in there)
        for h, p in zip(here, there, strict=True):
            if p is None or p >= 4:
                low += 1
                lifted += h is not None and h < 5
    n = len(rows)
    print(f"commits read per instance: median {sorted(read)[n // 2]}, fewest {min(read)}, most {max(read)}")
    print(
        f"history: a gold file first in {first} of {n}, in the best five in {best_five}; "
        f"pack first in {pack_first}"
    )
    print(
        f"gold files pack ranks 5th or lower or leaves out: {low}; of them in history's best five: {lifted}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
