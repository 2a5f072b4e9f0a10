"""Definition order only: how far down a sliced gold file's order its edited definitions come, per variant.

A fast loop for changes to the definition order (`slices.order_definitions`): each instance is packed
once at 13k (which ranks and slices as `pack` does); the arguments of every `order_definitions` call
are recorded, then the order is computed again under each variant (module settings of
`tokenpilot._pack.slices`, as JSON). An edited definition (bench/localize.py's edit sites) is
covered by the best k when one of the k best definitions contains it whole. Cells: of the instances
whose edit sites are all in sliced files, the share whose sites are all covered by the best 1 / 2 / 3
/ 5 / 8 (the slice sizes), split by even / odd instance index.

    python bench/slice_eval.py --instances ../shared/bench/swebench_dev.jsonl --repo-map MAP.json \
        --cache /tmp/pack.sqlite3 --variant nocall='{"W_RELATED": 0}'
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

import tokenpilot as tp
import tokenpilot._pack.examine as examining
import tokenpilot._pack.slices as slicing
from _materialise import materialise
from localize import edit_sites
from tokenpilot._pack.rank import weigh_by_field
from tokenpilot._pack.terms import read_task

logging.getLogger("tokenpilot").setLevel(logging.ERROR)
_DEFAULTS = {k: v for k, v in vars(slicing).items() if k.isupper() and not k.startswith("_")}
_GOLD = re.compile(r"^diff --git a/(\S+) b/", re.MULTILINE)
KS = (1, 2, 3, 5, 8)


def run(
    row: dict[str, Any], repo: str, trees: str, cache: str, variants: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    tree = materialise(
        Path(repo),
        row["base_commit"],
        Path(trees) / f"{row['repo'].replace('/', '+')}-{row['base_commit'][:12]}",
    )
    sites = edit_sites(tree, row["patch"])
    calls: dict[str, tuple[Any, ...]] = {}
    original = slicing.order_definitions

    def record(*args: Any) -> list[tuple[int, float]]:
        calls[args[0]] = args
        return original(*args)

    examining.order_definitions = record  # type: ignore[assignment]
    try:
        tp.pack(tree, row["problem_statement"], 13000, "gpt-4", cache=cache)
    finally:
        examining.order_definitions = original  # type: ignore[assignment]
    out: dict[str, Any] = {"id": row["instance_id"], "sites": len(sites)}
    sliced = bool(sites) and all(s["path"] in calls for s in sites)
    out["sliced"] = sliced
    task_text = read_task(row["problem_statement"]).text
    for name, settings in variants.items():
        for k, v in _DEFAULTS.items():
            setattr(slicing, k, v)
        for k, v in settings.items():
            if not k.startswith("_"):
                setattr(slicing, k, v)
        worst = 0
        for s in sites:
            if s["path"] not in calls:
                worst = 10**6
                continue
            args = calls[s["path"]]
            if settings.get("_weigh"):  # the query as the file ranking weighs it (title, code only)
                args = (*args[:4], weigh_by_field(args[4], task_text)[0], *args[5:])
            defs = args[1]
            ranked = slicing.order_definitions(*args)
            position = next(
                (
                    n
                    for n, (i, _) in enumerate(ranked)
                    if defs[i].start <= s["start"] and defs[i].end >= s["end"]
                ),
                10**6,
            )
            worst = max(worst, position)
        out[name] = worst
    for k, v in _DEFAULTS.items():
        setattr(slicing, k, v)
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
    variants: dict[str, dict[str, Any]] = {"base": {}}
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
    print(f"{'variant':<16} {'half':<5} {'n':>4} " + " ".join(f"{'top' + str(k):>6}" for k in KS))
    for name in variants:
        for half, keep in (
            ("all", lambda n: True),
            ("even", lambda n: n % 2 == 0),
            ("odd", lambda n: n % 2 == 1),
        ):
            chosen = [r for n, r in results if keep(n) and r["sliced"]]
            if not chosen:
                continue
            cells = [100 * sum(r[name] < k for r in chosen) / len(chosen) for k in KS]
            print(f"{name:<16} {half:<5} {len(chosen):>4} " + " ".join(f"{c:6.1f}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
