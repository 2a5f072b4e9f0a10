"""Where one pack's time goes: the stages' inner functions timed by wrapping them (little overhead).

    python bench/pack_profile.py --tree /tmp/tokenpilot-speed-e950d313a932 --mode cold
    python bench/pack_profile.py --tree TREE --mode warm-new      # a cache another task filled

One pack in this process, after import and tokenizer load (`--mode warm` / `warm-new`: after a first,
untimed pack of the same / another task into the same new cache). Prints the pack's wall and CPU
time, its stage timings (`PackStats.timing_ms`), then the total wall milliseconds and calls of each
wrapped function, largest first. Nested functions are counted inside their callers too (examine
holds outline, secrets and the fits). Set TOKENPILOT_PACK_WORKERS to compare the worker pools.
"""

from __future__ import annotations

import argparse
import collections
import functools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pack_speed import OTHER_TASK, TASK

totals: collections.Counter[str] = collections.Counter()
calls: collections.Counter[str] = collections.Counter()


def _wrap(owner: Any, name: str, label: str, *aliases: Any) -> None:
    """Replace owner.name (and the same function imported by name into `aliases`) by a timed one."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[label] += time.perf_counter() - started
            calls[label] += 1

    setattr(owner, name, timed)
    for module in aliases:
        for attribute, value in list(vars(module).items()):
            if value is original:
                setattr(module, attribute, timed)


def _instrument() -> None:
    from tokenpilot._pack import (
        assemble,
        cache,
        discover,
        examine,
        features,
        lexical,
        outline,
        secrets,
        select,
    )

    _wrap(discover, "list_file_names", "discover: git ls-files / walk", discover)
    _wrap(discover, "_read", "discover: read + hash a file")
    _wrap(features, "file_features", "features: terms + definitions of a file")
    _wrap(features.FeatureTable, "finish", "features: finish (writes)")
    _wrap(features.FeatureTable, "terms_of", "index/rank: term tables read back")
    _wrap(features.FeatureTable, "parts_of", "rank: parts' term tables")
    _wrap(lexical.LexicalIndex, "build", "index: BM25 build")
    _wrap(lexical.LexicalIndex, "save", "index: BM25 save")
    _wrap(examine, "examine", "examine (all)", assemble)
    _wrap(outline, "outline", "examine: outline", examine)
    _wrap(secrets, "find_secrets", "examine: find_secrets", examine)
    _wrap(secrets, "_scan", "examine: detect-secrets (import + plugins)")
    _wrap(outline, "fit_outline", "fit_outline (examine + briefs)", examine, assemble)
    _wrap(examine, "slice_options", "slice options", assemble)
    _wrap(select, "select", "select", assemble)
    for method in ("_block_costs", "_full_costs", "_fit_header", "_tree_line_costs"):
        _wrap(assemble.Assembler, method, f"assemble: {method.strip('_')}")
    _wrap(cache.PackCache, "put_many", "cache: put_many")
    _wrap(cache.PackCache, "get_many", "cache: get_many")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tree", type=Path, required=True)
    parser.add_argument("--mode", choices=("cold", "warm", "warm-new"), default="cold")
    parser.add_argument("--budget", type=int, default=27000)
    args = parser.parse_args()
    import tokenpilot as tp

    tp.tokenizer_for("gpt-4").count("warm up")
    tp.pack  # noqa: B018 - loads pack's modules before they are instrumented
    _instrument()
    work = Path(tempfile.mkdtemp(prefix="tokenpilot-profile-"))
    cache = work / "pack.sqlite3"
    if args.mode != "cold":
        tp.pack(args.tree, OTHER_TASK if args.mode == "warm-new" else TASK, args.budget, "gpt-4", cache=cache)
        totals.clear()
        calls.clear()
    wall, cpu = time.perf_counter(), time.process_time()
    result = tp.pack(args.tree, TASK, args.budget, "gpt-4", cache=cache)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stages = {k: round(v) for k, v in result.stats.timing_ms.items()}
    print(f"{args.mode}: wall {wall:.3f} s, CPU {cpu:.3f} s, stages (ms) {stages}")
    for label, seconds in totals.most_common():
        print(f"  {seconds * 1000:9.1f} ms {calls[label]:6d}  {label}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
