"""Trimming a 100 MB output in bounded memory: wall time and peak RSS of `tokenpilot trim`.

    .venv/bin/python bench/trim_stream.py [--mb 100] [--budget 800]

Writes a synthetic service log (one ERROR line in the middle) to a temporary file, pipes it into
`python -m tokenpilot trim` in a child process, and reports the child's wall time and peak RSS
(getrusage of children), with and without spilling. Results: bench/results/trim_stream.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ERROR_LINE = "2024-05-01 12:00:00,000 ERROR [db] connection pool exhausted after 30000 ms"


def write_log(path: Path, megabytes: int) -> int:
    target = megabytes * 1024 * 1024
    written = lines = 0
    with path.open("w") as out:
        while written < target:
            block = "".join(
                f"2024-05-01 12:{(lines + k) // 60 % 60:02d}:{(lines + k) % 60:02d},{k:03d} INFO [web] "
                f"GET /api/items/{lines + k} 200 {(lines + k) % 97} ms\n"
                for k in range(1000)
            )
            if lines <= target // 170 // 2 < lines + 1000:
                block += ERROR_LINE + "\n"
            out.write(block)
            written += len(block)
            lines += 1000
    return written


def run(path: Path, budget: int, spill: bool) -> dict[str, object]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    with path.open("rb") as stdin:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "tokenpilot",
                "trim",
                "--budget",
                str(budget),
                "--json",
                "--spill" if spill else "--no-spill",
            ],
            stdin=stdin,
            capture_output=True,
            check=True,
        )
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report = json.loads(done.stdout)
    return {
        "spill": spill,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "peak_rss_note": "max over child processes so far" if before else "",
        "tokens": report["tokens"],
        "tokens_before": report["tokens_before"],
        "lines_before": report["lines_before"],
        "kept_error_line": ERROR_LINE in report["text"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--budget", type=int, default=800)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "big.log"
        size = write_log(path, args.mb)
        runs = [run(path, args.budget, spill=False), run(path, args.budget, spill=True)]
    result = {"input_bytes": size, "budget": args.budget, "runs": runs}
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "trim_stream.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# trim: {size / 1024 / 1024:.0f} MB log through `tokenpilot trim --budget {args.budget}`",
        "",
        "| spill | seconds | peak RSS (MB) | lines | tokens before | tokens after | ERROR line kept |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r['spill']} | {r['seconds']} | {r['peak_rss_mb']} | {r['lines_before']:,} | "
            f"{r['tokens_before']:,} | {r['tokens']} | {r['kept_error_line']} |"
        )
    (out / "trim_stream.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
