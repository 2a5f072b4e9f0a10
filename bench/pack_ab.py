"""Interleaved A/B of `pack` on one tree: this checkout against another's src, or two environments.

    python bench/pack_ab.py --tree /tmp/tokenpilot-speed-e950d313a932 --mode warm --pairs 8 \\
        --before /path/to/main/src
    python bench/pack_ab.py --tree ... --mode cold --pairs 4 \\
        --env-a TOKENPILOT_PACK_WORKERS=2 --env-b TOKENPILOT_PACK_WORKERS=0

Each run is a fresh process (bench/pack_speed.py's child: `pack()` timed after import and tokenizer
load), A and B alternating (A B, B A, A B, …) so that a change in the machine's load falls on both.
Cold runs use a new cache each; warm runs share one per side, filled by a discarded first run;
warm-new runs each start from a copy of a cache filled by a pack of another task (a new task on a
tree packed before). `--evict` drops the tree's files from the page cache before each run (a first
pack after the tree's pages went cold: it is reading from the disk that then dominates).
Prints medians of wall time, CPU time (+ child processes), peak memory and the load seen, and the
stages' median milliseconds. The machine is shared: compare CPU times, and give the load with them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pack_speed import OTHER_TASK, _pack_run, copy_cache


def _run(
    tree: Path, budget: int, cache: Path, env: dict[str, str], task: str | None = None
) -> dict[str, Any]:
    if task is not None:
        return _pack_run(tree, budget, cache, env=env, task=task)
    return _pack_run(tree, budget, cache, env=env)


def evict(tree: Path) -> None:
    """Drop the tree's files from the page cache (posix_fadvise DONTNEED: no root needed)."""
    for folder, _, names in os.walk(tree):
        for name in names:
            try:
                fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _env(assignments: list[str], src: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    for assignment in assignments:
        key, _, value = assignment.partition("=")
        env[key] = value
    return env


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tree", type=Path, required=True)
    parser.add_argument("--mode", choices=("cold", "warm", "warm-new"), default="warm")
    parser.add_argument(
        "--evict", action="store_true", help="drop the tree from the page cache before each run"
    )
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--budget", type=int, default=27000)
    parser.add_argument("--before", type=Path, help="B: another checkout's src/ (A: this checkout)")
    parser.add_argument("--env-a", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--env-b", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    sides = {"A": _env(args.env_a, None), "B": _env(args.env_b, args.before)}
    work = Path(tempfile.mkdtemp(prefix="tokenpilot-ab-"))
    rows: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    if args.mode != "cold":
        for side, env in sides.items():
            task = OTHER_TASK if args.mode == "warm-new" else None
            _run(args.tree, args.budget, work / f"{side}.sqlite3", env, task)
    for n in range(args.pairs):
        for side in ("A", "B") if n % 2 == 0 else ("B", "A"):
            if args.mode == "warm":
                cache = work / f"{side}.sqlite3"
            elif args.mode == "warm-new":  # a copy of the cache another task filled: this task's first run
                cache = copy_cache(work / f"{side}.sqlite3", work / f"{side}-{n}.sqlite3")
            else:
                cache = work / f"{side}-{n}.sqlite3"
            if args.evict:
                evict(args.tree)
            rows[side].append(_run(args.tree, args.budget, cache, sides[side]))
    for side, runs in rows.items():
        label = f"B ({args.before or ' '.join(args.env_b) or 'this checkout'})" if side == "B" else "A"
        if side == "A" and args.env_a:
            label += f" ({' '.join(args.env_a)})"

        def median(key: str, of: list[dict[str, Any]] = runs) -> float:
            return statistics.median(r[key] for r in of)

        loads = [r["load_1m"] for r in runs]
        print(
            f"{label}, {args.mode}, {len(runs)} runs: pack() {median('pack_s'):.3f} s, "
            f"CPU {median('cpu_s'):.3f} s "
            f"(+ {median('children_cpu_s'):.3f} children), whole process {median('process_s'):.3f} s, "
            f"peak {median('peak_mb'):.0f} MB, load {min(loads):.1f}-{max(loads):.1f}"
        )
        stages = {k: round(statistics.median(r["timing_ms"][k] for r in runs)) for k in runs[0]["timing_ms"]}
        print(f"  stages (ms): {stages}")
        print(f"  runs, pack() s: {[round(r['pack_s'], 3) for r in runs]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
