"""Counting speed: tokenpilot vs calling tiktoken directly, on ~10 MB of real source code.

    python bench/count_speed.py [--corpus DIR] [--mb 10] [--runs 5] [--out bench/results/count_speed.json]

The corpus defaults to the running Python's standard library sources (real code, always present).
Both sides count the same files in the same process, alternating, `--runs` times; figures are medians.
- tiktoken: `Encoding.encode_ordinary(text)` per file (the bundled encoding object itself);
- tokenpilot cold: `tokenizer_for(model).count(text)` per file with its content-hash cache emptied;
- tokenpilot warm: the same with the cache filled (repeated texts);
- tokenpilot batch: `count_many(texts)` (tiktoken's threaded batch encoder).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

from bench_corpus import python_sources
from tokenpilot._tokens._tokenizer import TiktokenTokenizer, _CountCache, bundled_tokenizer


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    total = fn()
    return time.perf_counter() - start, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--mb", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--encoding", default="o200k_base")
    parser.add_argument("--out", type=Path, default=Path("bench/results/count_speed.json"))
    args = parser.parse_args()

    texts = python_sources(args.corpus, args.mb)
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    tokenizer: TiktokenTokenizer = bundled_tokenizer(args.encoding)
    encoding = tokenizer._encoding

    def direct() -> int:
        return sum(len(encoding.encode_ordinary(t)) for t in texts)

    def ours_cold() -> int:
        tokenizer._cache = _CountCache()
        return sum(tokenizer.count(t) for t in texts)

    def ours_warm() -> int:
        return sum(tokenizer.count(t) for t in texts)

    def ours_batch() -> int:
        return sum(tokenizer.count_many(texts))

    times: dict[str, list[float]] = {"tiktoken": [], "cold": [], "warm": [], "batch": []}
    totals: dict[str, int] = {}
    direct()  # warm up the encoder and page cache before timing
    for _ in range(args.runs):
        for name, fn in (
            ("tiktoken", direct),
            ("cold", ours_cold),
            ("warm", ours_warm),
            ("batch", ours_batch),
        ):
            seconds, total = timed(fn)
            times[name].append(seconds)
            totals[name] = total
    if len(set(totals.values())) != 1:
        sys.exit(f"counts differ: {totals}")
    medians = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "corpus": str(args.corpus),
        "files": len(texts),
        "megabytes": round(megabytes, 2),
        "tokens": totals["tiktoken"],
        "encoding": args.encoding,
        "runs": args.runs,
        "median_seconds": {k: round(v, 4) for k, v in medians.items()},
        "ratio_to_tiktoken": {k: round(v / medians["tiktoken"], 3) for k, v in medians.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
