"""Measure a family's estimate factor: tokens of a real tokenizer.json / o200k_base tokens.

    python bench/estimate_factors.py TOKENIZER_JSON [--corpus DIR] [--mb 2]

The factors in `tokenpilot._tokens._tokenizer.FAMILY_FACTORS` should sit at or above the ratio this
prints (budgets are enforced on estimates, so over-counting is the safe side).
"""

from __future__ import annotations

import argparse
import sysconfig
from pathlib import Path

from tokenizers import Tokenizer

from bench_corpus import python_sources
from tokenpilot._tokens._tokenizer import bundled_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description="Ratio of a tokenizer.json's counts to o200k_base's.")
    parser.add_argument("tokenizer_json", type=Path)
    parser.add_argument("--corpus", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--mb", type=float, default=2.0)
    args = parser.parse_args()
    texts = python_sources(args.corpus, args.mb)
    other = Tokenizer.from_file(str(args.tokenizer_json))
    o200k = bundled_tokenizer("o200k_base")
    theirs = sum(len(other.encode(t, add_special_tokens=False).ids) for t in texts)
    ours = sum(o200k.count(t) for t in texts)
    print(f"{len(texts)} files, {theirs:,} tokens vs o200k_base {ours:,}: ratio {theirs / ours:.3f}")


if __name__ == "__main__":
    main()
