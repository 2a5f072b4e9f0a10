"""Speed of `pack` on a large repository, cold (empty cache) and warm, with Repomix as the anchor.

    python bench/pack_speed.py --repo /work/.mirror/sympy+sympy/repo [--commit SHA] [--runs 5]
    python bench/pack_speed.py --tree /path/to/a/checkout
    python bench/pack_speed.py --repo SYMPY_CLONE --scale MAP.json   # + the 3-tree scaling table
    python bench/pack_speed.py ... --before /path/to/main/src          # that code too, interleaved

Each run is a fresh process (`python -c` calling `tp.pack`), so nothing is warm but the disk cache
(and the OS page cache). Two times per run: the `pack()` call itself (after import and tokenizer
load), and the whole process. Cold runs use a new, empty cache file each time; warm runs share one
filled by a first, discarded run; "warm, new task" runs each start from a copy of a cache filled by
a pack of another task (OTHER_TASK), the realistic case of a new task on a tree packed before.
Repomix runs as `npx -y repomix --compress` on the same tree (a first, discarded run fetches it).
Each run also reports its peak memory (the child's own high-water mark, VmHWM; ru_maxrss where
/proc is missing).
`--scale MAP.json` (owner/name -> clone, as bench/localize.py) adds a small tree (psf/requests), the
main tree, and all nine benchmark repositories in one tree, each at its clone's HEAD: seconds and
milliseconds per MB of source, peak memory and its ratio to the tree's size.
Medians go to bench/results/pack_speed.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
# "warm, new task": the cache filled by packs of this other task, then TASK packed for the first time
OTHER_TASK = "LatexPrinter._print_Pow drops parentheses around negative exponents in sympy/printing/latex.py"
_CHILD = """
import json, os, resource, sys, time
def peak_mb():
    # VmHWM: this process's own high-water mark; ru_maxrss also counts the parent's memory at fork
    # (Linux keeps it across exec), which made small trees look as large as the bench process
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
import tokenpilot as tp
tp.tokenizer_for("gpt-4").count("warm up")
tp.pack  # `import tokenpilot` loads its parts on first use: pack's modules are part of the import here
t1 = time.perf_counter()
c1 = time.process_time()
r = tp.pack(sys.argv[1], sys.argv[2], int(sys.argv[3]), "gpt-4", cache=sys.argv[4])
t2 = time.perf_counter()
c2 = time.process_time()
# child processes (pack's feature workers, git): their CPU time and the largest one's peak memory
children = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"pack_s": t2 - t1, "cpu_s": c2 - c1, "setup_s": t1 - t0, "tokens": r.tokens,
                  "files": r.stats.files_candidates, "seen": r.stats.files_seen,
                  "timing_ms": dict(r.stats.timing_ms),
                  "children_cpu_s": children.ru_utime + children.ru_stime,
                  "children_peak_mb": children.ru_maxrss / 1024,
                  "load_1m": os.getloadavg()[0], "peak_mb": peak_mb()}))
"""


def _pack_run(
    tree: Path,
    budget: int,
    cache: Path,
    src: Path | None = None,
    env: dict[str, str] | None = None,
    task: str = TASK,
) -> dict[str, Any]:
    """One pack in a fresh process; `src`: another checkout's `src` to run instead (PYTHONPATH);
    `env`: the child's whole environment (else this one's)."""
    if src is not None:
        env = {**(os.environ if env is None else env), "PYTHONPATH": str(src)}
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tree), task, str(budget), str(cache)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    result["process_s"] = time.perf_counter() - started
    return result


def _repomix_run(tree: Path, output: Path, offline: bool = True) -> float:
    """One `npx repomix --compress` run; the first (offline=False) may fetch the package from npm."""
    started = time.perf_counter()
    subprocess.run(
        [
            "npx",
            *(["--offline"] if offline else []),
            "-y",
            "repomix",
            "--compress",
            "--quiet",
            "--output",
            str(output),
            str(tree),
        ],
        capture_output=True,
        check=True,
        cwd=tree,
    )
    return time.perf_counter() - started


def copy_cache(filled: Path, to: Path) -> Path:
    """A copy of a filled cache (the SQLite file and its BM25 indexes), so a run starts from it."""
    shutil.copyfile(filled, to)
    if filled.with_name(filled.name + ".bm25").is_dir():
        shutil.copytree(filled.with_name(filled.name + ".bm25"), to.with_name(to.name + ".bm25"))
    return to


def _tree_size(tree: Path) -> tuple[int, int]:
    files = [p for p in tree.rglob("*") if p.is_file() and ".git" not in p.relative_to(tree).parts]
    return len(files), sum(p.stat().st_size for p in files)


SCALE_SMALL = ("psf/requests",)
SCALE_ALL = [
    "psf/requests",
    "pallets/flask",
    "sympy/sympy",
    "pytest-dev/pytest",
    "sphinx-doc/sphinx",
    "pydata/xarray",
    "astropy/astropy",
    "pylint-dev/pylint",
    "mwaskom/seaborn",
]


def _work_tree(repo_map: dict[str, str], repos: tuple[str, ...] | list[str], name: str) -> Path:
    """The HEADs of these clones side by side in one git work tree (made once)."""
    root = Path(tempfile.gettempdir()) / f"tokenpilot-scale-{name}"
    marker = root.with_name(root.name + ".complete")
    if marker.exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    for repo in repos:
        clone = Path(repo_map[repo])
        sha = subprocess.run(
            ["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        materialise(clone, sha, root / repo.replace("/", "+"))
    for leftover in root.glob("*.complete"):
        leftover.unlink()
    # each repository's own git attributes (working-tree encodings) do not apply to the joined tree
    for attributes in root.rglob(".gitattributes"):
        attributes.unlink()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    marker.write_text("done\n")
    return root


def _measure(
    tree: Path, budget: int, runs: int, work: Path, label: str, before: Path | None = None
) -> dict[str, Any]:
    """Cold and warm medians; with `before` (another checkout's src) that code too, interleaved."""
    variants: list[tuple[str, Path | None]] = [("after", None)] + ([("before", before)] if before else [])
    modes = ("cold", "warm", "warm_new")
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {v: {m: [] for m in modes} for v, _ in variants}
    for n in range(runs):
        for name, src in variants if n % 2 == 0 else variants[::-1]:
            rows[name]["cold"].append(_pack_run(tree, budget, work / f"{label}-{name}-cold-{n}.sqlite3", src))
    for name, src in variants:
        _pack_run(tree, budget, work / f"{label}-{name}-warm.sqlite3", src)  # fills the warm cache
    for n in range(runs):
        for name, src in variants if n % 2 == 0 else variants[::-1]:
            rows[name]["warm"].append(_pack_run(tree, budget, work / f"{label}-{name}-warm.sqlite3", src))
    # warm, new task: from a copy of a cache that packs of another task filled (its first run each)
    for name, src in variants:
        _pack_run(tree, budget, work / f"{label}-{name}-other.sqlite3", src, task=OTHER_TASK)
    for n in range(runs):
        for name, src in variants if n % 2 == 0 else variants[::-1]:
            cache = copy_cache(
                work / f"{label}-{name}-other.sqlite3", work / f"{label}-{name}-new-{n}.sqlite3"
            )
            rows[name]["warm_new"].append(_pack_run(tree, budget, cache, src))

    def median(runs_of: list[dict[str, Any]], key: str) -> float:
        return round(statistics.median(r[key] for r in runs_of), 3)

    def summary(name: str) -> dict[str, Any]:
        return {
            mode: {
                k: median(rows[name][mode], k)
                for k in ("pack_s", "cpu_s", "children_cpu_s", "process_s", "peak_mb", "children_peak_mb")
            }
            | {"runs": rows[name][mode]}
            for mode in modes
        }

    n_files, n_bytes = _tree_size(tree)
    out = {"tree": str(tree), "files": n_files, "bytes": n_bytes, **summary("after")}
    if before is not None:
        out["before"] = summary("before") | {"src": str(before)}
    return out


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
    parser.add_argument("--scale", type=Path, default=None, help="MAP.json: add the scaling table")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "pack_speed")
    parser.add_argument(
        "--before", type=Path, default=None, help="another checkout's src/: measured too, interleaved"
    )
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
    load_before = os.getloadavg()
    n_files, n_bytes = _tree_size(tree)
    work = Path(tempfile.mkdtemp(prefix="tokenpilot-speed-"))
    main_run = _measure(tree, args.budget, args.runs, work, "main", args.before)
    repomix: list[float] = []
    repomix_tokens = None
    if not args.no_repomix:
        output = work / "repomix.xml"
        _repomix_run(tree, output, offline=False)  # discarded: fetches it when npm's cache lacks it
        repomix = [_repomix_run(tree, output) for _ in range(max(1, args.runs // 2))]
        import tokenpilot as tp

        repomix_tokens = tp.count_tokens(output.read_text(encoding="utf-8", errors="replace"), model="gpt-4")

    report = {
        "tree": str(tree),
        "files": n_files,
        "bytes": n_bytes,
        "budget": args.budget,
        "runs": args.runs,
        "cpus": os.cpu_count(),
        "cold": main_run["cold"],
        "warm": main_run["warm"],
        "warm_new": main_run["warm_new"],
        "repomix_compress": {
            "process_s": round(statistics.median(repomix), 3) if repomix else None,
            "runs": repomix,
            "output_tokens": repomix_tokens,
        },
        "command": "python bench/pack_speed.py " + " ".join(sys.argv[1:]),
    }
    rows: list[str] = [
        f"# pack speed: {n_files:,} files, {n_bytes / 1e6:.1f} MB, budget {args.budget:,} (gpt-4), "
        f"{os.cpu_count()} CPUs, medians of {args.runs}",
        "",
        f"Command: `{report['command']}`",
        "",
        "| run | pack() s | pack() CPU s (+ child processes) | whole process s | peak memory MB "
        "(largest child) | output tokens |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, measured in [("", main_run)] + ([(" (before)", main_run["before"])] if args.before else []):
        for mode in ("cold", "warm", "warm_new"):
            m = measured[mode]
            what = {"cold": "cold cache", "warm": "warm cache", "warm_new": "warm cache, new task"}[mode]
            rows.append(
                f"| tokenpilot pack{label}, {what} | {m['pack_s']} | {m['cpu_s']} "
                f"(+ {m['children_cpu_s']}) | {m['process_s']} | {m['peak_mb']:.0f} "
                f"({m['children_peak_mb']:.0f}) | {m['runs'][0]['tokens']:,} |"
            )
    if repomix:
        rows.append(
            f"| repomix --compress (no budget) | – | {report['repomix_compress']['process_s']} | – | "
            f"{repomix_tokens:,} |"
        )
    if args.scale is not None:
        repo_map = json.loads(args.scale.read_text())
        scaled = [
            _measure(
                _work_tree(repo_map, SCALE_SMALL, "small"), args.budget, args.runs, work, "small", args.before
            ),
            main_run,
            _measure(
                _work_tree(repo_map, SCALE_ALL, "all"),
                args.budget,
                max(1, args.runs // 2),
                work,
                "all",
                args.before,
            ),
        ]
        report["scale"] = scaled
        rows += [
            "",
            f"Scaling (budget {args.budget:,}; cold medians of {args.runs}, the nine-repository tree of "
            f"{max(1, args.runs // 2)}):",
            "",
            "| tree | files | MB | cold s | ms per MB | warm s | warm new task s | peak MB (cold) "
            "| peak / tree size |"
            + (
                " cold s before | warm s before | warm new task s before | peak MB before |"
                if args.before
                else ""
            ),
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|---:|---:|" if args.before else ""),
        ]
        for run in scaled:
            mb = run["bytes"] / 1e6
            row = (
                f"| {Path(run['tree']).name} | {run['files']:,} | {mb:.1f} | {run['cold']['pack_s']} | "
                f"{1000 * run['cold']['pack_s'] / mb:.0f} | {run['warm']['pack_s']} | "
                f"{run['warm_new']['pack_s']} | "
                f"{run['cold']['peak_mb']:.0f} | {run['cold']['peak_mb'] / mb:.2f} |"
            )
            if args.before:
                b = run["before"]
                row += (
                    f" {b['cold']['pack_s']} | {b['warm']['pack_s']} | {b['warm_new']['pack_s']} | "
                    f"{b['cold']['peak_mb']:.0f} |"
                )
            rows.append(row)
    # the machine is shared: say how busy it was (1, 5 and 15-minute load averages)
    report["load_average"] = {"start": load_before, "end": os.getloadavg()}
    rows += [
        "",
        f"Load average at the start {', '.join(f'{x:.1f}' for x in load_before)}, at the end "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs).",
    ]
    table = "\n".join(rows) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # written last, so the scaling runs are in it too
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
