"""Speed of `pack` on a large repository, cold (empty cache) and warm, with Repomix as the anchor.

    python bench/pack_speed.py --repo /work/.mirror/sympy+sympy/repo [--commit SHA] [--runs 5]
    python bench/pack_speed.py --tree /path/to/a/checkout

Each run is a fresh process (`python -c` calling `tp.pack`), so nothing is warm but the disk cache
(and the OS page cache). Two times per run: the `pack()` call itself (after import and tokenizer
load), and the whole process. Cold runs use a new, empty cache file each time; warm runs share one
filled by a first, discarded run. Repomix runs as `npx -y repomix --compress` on the same tree (a
first, discarded run fetches it). Medians go to bench/results/pack_speed.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _materialise import materialise

REPO_ROOT = Path(__file__).resolve().parent.parent
TASK = (
    "Rational coefficients are lost by Expr.as_coefficient in sympy.core.expr when the expression "
    "is a Mul with a Pow; as_coeff_Mul returns the wrong pair."
)
_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import tokenpilot as tp
tp.tokenizer_for("gpt-4").count("warm up")
t1 = time.perf_counter()
r = tp.pack(sys.argv[1], sys.argv[2], int(sys.argv[3]), "gpt-4", cache=sys.argv[4])
t2 = time.perf_counter()
print(json.dumps({"pack_s": t2 - t1, "setup_s": t1 - t0, "tokens": r.tokens,
                  "files": r.stats.files_candidates, "seen": r.stats.files_seen,
                  "timing_ms": dict(r.stats.timing_ms)}))
"""


def _pack_run(tree: Path, budget: int, cache: Path) -> dict[str, Any]:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tree), TASK, str(budget), str(cache)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    result["process_s"] = time.perf_counter() - started
    return result


def _repomix_run(tree: Path, output: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["npx", "-y", "repomix", "--compress", "--quiet", "--output", str(output), str(tree)],
        capture_output=True,
        check=True,
        cwd=tree,
    )
    return time.perf_counter() - started


def _tree_size(tree: Path) -> tuple[int, int]:
    files = [p for p in tree.rglob("*") if p.is_file() and ".git" not in p.relative_to(tree).parts]
    return len(files), sum(p.stat().st_size for p in files)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repo", type=Path, help="a git clone (bare is fine) to materialise")
    parser.add_argument("--commit", default="HEAD")
    parser.add_argument("--tree", type=Path, help="an existing directory instead of --repo")
    parser.add_argument("--budget", type=int, default=27000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-repomix", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "pack_speed")
    args = parser.parse_args()
    if args.tree is None:
        if args.repo is None:
            parser.error("give --repo or --tree")
        sha = subprocess.run(
            ["git", "-C", str(args.repo), "rev-parse", args.commit],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        args.tree = materialise(args.repo, sha, Path(tempfile.gettempdir()) / f"tokenpilot-speed-{sha[:12]}")
        if not (args.tree / ".git").exists():
            # a work tree as users have it: pack lists files with `git ls-files`
            subprocess.run(["git", "init", "-q", str(args.tree)], check=True)
            subprocess.run(["git", "-C", str(args.tree), "add", "-A"], check=True)
    tree = args.tree.resolve()
    n_files, n_bytes = _tree_size(tree)
    work = Path(tempfile.mkdtemp(prefix="tokenpilot-speed-"))
    cold = [_pack_run(tree, args.budget, work / f"cold-{n}.sqlite3") for n in range(args.runs)]
    warm_cache = work / "warm.sqlite3"
    _pack_run(tree, args.budget, warm_cache)
    warm = [_pack_run(tree, args.budget, warm_cache) for _ in range(args.runs)]
    repomix: list[float] = []
    repomix_tokens = None
    if not args.no_repomix:
        output = work / "repomix.xml"
        _repomix_run(tree, output)
        repomix = [_repomix_run(tree, output) for _ in range(max(1, args.runs // 2))]
        import tokenpilot as tp

        repomix_tokens = tp.count_tokens(output.read_text(encoding="utf-8", errors="replace"), model="gpt-4")

    def median(runs: list[dict[str, Any]], key: str) -> float:
        return round(statistics.median(r[key] for r in runs), 3)

    report = {
        "tree": str(tree),
        "files": n_files,
        "bytes": n_bytes,
        "budget": args.budget,
        "runs": args.runs,
        "cpus": os.cpu_count(),
        "cold": {"pack_s": median(cold, "pack_s"), "process_s": median(cold, "process_s"), "runs": cold},
        "warm": {"pack_s": median(warm, "pack_s"), "process_s": median(warm, "process_s"), "runs": warm},
        "repomix_compress": {
            "process_s": round(statistics.median(repomix), 3) if repomix else None,
            "runs": repomix,
            "output_tokens": repomix_tokens,
        },
        "command": "python bench/pack_speed.py " + " ".join(sys.argv[1:]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    rows = [
        f"# pack speed: {n_files:,} files, {n_bytes / 1e6:.1f} MB, budget {args.budget:,} (gpt-4), "
        f"{os.cpu_count()} CPUs, medians of {args.runs}",
        "",
        f"Command: `{report['command']}`",
        "",
        "| run | pack() s | whole process s | output tokens |",
        "|---|---:|---:|---:|",
        f"| tokenpilot pack, cold cache | {report['cold']['pack_s']} | {report['cold']['process_s']} | "
        f"{cold[0]['tokens']:,} |",
        f"| tokenpilot pack, warm cache | {report['warm']['pack_s']} | {report['warm']['process_s']} | "
        f"{warm[0]['tokens']:,} |",
    ]
    if repomix:
        rows.append(
            f"| repomix --compress (no budget) | – | {report['repomix_compress']['process_s']} | "
            f"{repomix_tokens:,} |"
        )
    table = "\n".join(rows) + "\n"
    args.out.with_suffix(".md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
