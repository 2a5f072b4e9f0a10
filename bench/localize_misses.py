"""Why edit sites were missed: each instance of a localize run whose edited definitions were not all
shown, packed again at one budget, and each unshown edited definition put in one class.

    python bench/localize_misses.py bench/results/localize.json --repo-map MAP.json --budget 13000
        [--cache /tmp/tokenpilot-bench/pack-cache.sqlite3] [--trees /tmp/tokenpilot-trees]

Classes, per unshown definition: the gold file `omitted` or shown as a `path` or an `outline`
(the ranking and the budget's split); `long class` (a class of CLASS_WHOLE_MAX_LINES+ lines, not
ranked itself); or the file sliced with other definitions chosen, where the edited one (or the
ranked definition holding it) is `ranked K of N`, or `unscored` (no weight: no term, name or
message of the task in it). An instance counts under its worst class, in that order.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tokenpilot as tp
import tokenpilot._pack.examine as examining
from _materialise import materialise
from localize import MODEL, _apply_settings, body_shown, edit_sites, shown_lines
from tokenpilot._pack.slices import CLASS_WHOLE_MAX_LINES, Definition

logging.getLogger("tokenpilot").setLevel(logging.ERROR)
WORST_FIRST = ("omitted", "path", "outline", "long class", "sliced")


def _classify(site: dict[str, Any], packed: tp.PackedFile | None, order: Any) -> tuple[str, str]:
    """(class, detail) of one unshown edited definition."""
    if packed is None or packed.tier in ("omitted", "path", "outline"):
        return (packed.tier if packed else "omitted"), ""
    if site["end"] - site["start"] + 1 >= CLASS_WHOLE_MAX_LINES and packed.tier == "slices":
        return "long class", f"{site['end'] - site['start'] + 1} lines"
    if order is None:
        return "sliced", "no order recorded"
    ranked, defs = order
    holders = [
        n for n, (i, _) in enumerate(ranked) if defs[i].start <= site["start"] and site["end"] <= defs[i].end
    ]
    if not holders:
        return "sliced", "unscored"
    return "sliced", f"ranked {holders[-1] + 1} of {len(ranked)}, {len(packed.slices)} shown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", type=Path)
    parser.add_argument("--repo-map", type=Path, required=True)
    parser.add_argument(
        "--instances",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared/bench/swebench_dev.jsonl",
    )
    parser.add_argument("--budget", default="13000")
    parser.add_argument("--cache", default="/tmp/tokenpilot-bench/pack-cache.sqlite3")
    parser.add_argument("--trees", default="/tmp/tokenpilot-trees")
    args = parser.parse_args(argv)
    rows = {r["instance_id"]: r for r in map(json.loads, args.instances.read_text().splitlines()) if r}
    repo_map = json.loads(args.repo_map.read_text())
    orders: dict[str, tuple[list[tuple[int, float]], Sequence[Definition]]] = {}
    original = examining.order_definitions

    def recording(path: str, defs: Sequence[Definition], *rest: Any) -> list[tuple[int, float]]:
        ranked = original(path, defs, *rest)
        orders[path] = (ranked, defs)
        return ranked

    examining.order_definitions = recording  # type: ignore[assignment]
    worst: Counter[str] = Counter()
    for result in json.loads(args.results.read_text())["results"]:
        if result["pack"][args.budget].get("site_recall") in (None, 1.0):
            continue
        row = rows[result["instance_id"]]
        tree = materialise(
            Path(repo_map[row["repo"]]),
            row["base_commit"],
            Path(args.trees) / f"{row['repo'].replace('/', '+')}-{row['base_commit'][:12]}",
        )
        _apply_settings()
        orders.clear()
        packed = tp.pack(tree, row["problem_statement"], int(args.budget), MODEL, cache=args.cache)
        lines, at = packed.text.split("\n"), shown_lines(packed.text)
        files = {f.path: f for f in packed.files}
        classes = []
        for site in edit_sites(tree, row["patch"]):
            if body_shown(site["segment"], at, lines):
                continue
            kind, detail = _classify(site, files.get(site["path"]), orders.get(site["path"]))
            classes.append(kind)
            print(f"{row['instance_id']}  {site['path']}  {site['name']}  {kind}  {detail}")
        if classes:
            worst[min(classes, key=WORST_FIRST.index)] += 1
    print("instances by their worst miss:", dict(worst))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
