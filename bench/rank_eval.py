"""Ranking only: where the gold files rank under the file ranking (`rank.rank`), per variant.

A fast loop for changes to the ranking (seconds per instance, not a whole pack per budget): the
same discovery, features, index and task reading as `pack`, then `rank` under each variant given
(module settings of `tokenpilot._pack.rank`, as JSON), and the share of instances whose first file
is gold, whose gold files are all in the best 5 / 10, split by even / odd instance index.

    python bench/rank_eval.py --instances ../shared/bench/swebench_dev.jsonl --repo-map MAP.json \
        --cache /tmp/pack.sqlite3 --variant base='{}' --variant nohop='{"W_HOP": 0}'
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tokenpilot._pack.rank as ranking
from _materialise import materialise
from tokenpilot._pack._api import _index_dir
from tokenpilot._pack.cache import PackCache
from tokenpilot._pack.discover import discover
from tokenpilot._pack.features import FeatureTable
from tokenpilot._pack.lexical import lexical_index
from tokenpilot._pack.slices import task_clues
from tokenpilot._pack.terms import read_task

logging.getLogger("tokenpilot").setLevel(logging.ERROR)
# the settings as the module defines them (a worker runs many instances: restore before each variant)
_DEFAULTS = {k: v for k, v in vars(ranking).items() if k.isupper()}
_GOLD = re.compile(r"^diff --git a/(\S+) b/", re.MULTILINE)


def run(
    row: dict[str, Any], repo: str, trees: str, cache: str, variants: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    tree = materialise(
        Path(repo),
        row["base_commit"],
        Path(trees) / f"{row['repo'].replace('/', '+')}-{row['base_commit'][:12]}",
    )
    gold = set(_GOLD.findall(row["patch"]))
    store = PackCache(Path(cache))
    found = discover(tree)
    files = list(found.files)
    table = FeatureTable(files, store)
    read = read_task(row["problem_statement"])
    query = ranking.query_terms(read.text, read.mentions.identifiers)
    clues = task_clues(read.text, read.mentions.identifiers, read.mentions.dotted)
    paths = [f.path for f in files]
    index = lexical_index(paths, [f.digest for f in files], table.complete, _index_dir(store))
    names_index = lexical_index(
        paths, [f.digest for f in files], table.names, _index_dir(store), field="names"
    )
    defaults = {k: _DEFAULTS[k] for v in variants.values() for k in v}
    out: dict[str, Any] = {"id": row["instance_id"], "gold": sorted(gold)}
    for name, settings in variants.items():
        for k, v in defaults.items():
            setattr(ranking, k, v)
        for k, v in settings.items():
            setattr(ranking, k, v)
        scores = ranking.rank(
            paths,
            table.features,
            query,
            read.mentions,
            bm25_index=index,
            names_index=names_index,
            terms_of=table.terms_of,
            parts_of=table.parts_of,
            messages=clues.messages,
            text_of=lambda i: files[i].text,
            task_text=read.text,
        )
        order = sorted(range(len(files)), key=lambda i: (-scores[i].score, paths[i]))
        position = {paths[i]: n for n, i in enumerate(order)}
        out[name] = {g: position.get(g) for g in gold}
        out.setdefault("top", {})[name] = [paths[i] for i in order[:5]]
    store.close()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--instances", type=Path, required=True)
    p.add_argument("--repo-map", type=Path, required=True)
    p.add_argument("--trees", default="/tmp/tokenpilot-trees")
    p.add_argument("--cache", required=True)
    p.add_argument("--every", type=int, default=1)
    p.add_argument("--jobs", type=int, default=1, choices=(1, 2))
    p.add_argument("--variant", action="append", default=[])
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    variants = {"base": {}}
    for v in args.variant:
        name, _, settings = v.partition("=")
        variants[name] = json.loads(settings or "{}")
    repo_map = json.loads(args.repo_map.read_text())
    rows = [json.loads(line) for line in args.instances.read_text().splitlines() if line.strip()]
    indexed = list(enumerate(rows))[:: args.every]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [
            (n, pool.submit(run, r, repo_map[r["repo"]], args.trees, args.cache, variants))
            for n, r in indexed
        ]
        results = [(n, f.result()) for n, f in futures]
    if args.out:
        args.out.write_text(json.dumps([r for _, r in results], indent=1))
    print(
        f"{'variant':<16} {'half':<5} {'n':>4} {'first':>6} {'all@5':>6} {'all@10':>6}"
        f" {'all@20':>6} {'all@30':>6} {'mrr':>6} {'2+ all@10':>9} {'2+ all@30':>9}"
    )
    for name in variants:
        for half, keep in (
            ("all", lambda n: True),
            ("even", lambda n: n % 2 == 0),
            ("odd", lambda n: n % 2 == 1),
        ):
            chosen = [r for n, r in results if keep(n)]
            if not chosen:
                continue
            first = all5 = all10 = all20 = all30 = mrr = 0.0
            multi = [r for r in chosen if len(r["gold"]) > 1]
            m10 = m30 = 0.0
            for r in chosen:
                pos = [x if x is not None else 10**6 for x in r[name].values()]
                first += min(pos) == 0
                all5 += max(pos) < 5
                all10 += max(pos) < 10
                all20 += max(pos) < 20
                all30 += max(pos) < 30
                mrr += sum(1 / (x + 1) for x in pos) / len(pos)
                if len(r["gold"]) > 1:
                    m10 += max(pos) < 10
                    m30 += max(pos) < 30
            k = len(chosen)
            print(
                f"{name:<16} {half:<5} {k:>4} {100 * first / k:6.1f} {100 * all5 / k:6.1f}"
                f" {100 * all10 / k:6.1f} {100 * all20 / k:6.1f} {100 * all30 / k:6.1f} {mrr / k:6.3f}"
                f" {100 * m10 / max(1, len(multi)):9.1f} {100 * m30 / max(1, len(multi)):9.1f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
