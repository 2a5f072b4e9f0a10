"""Counting in bounded memory: chunks are cut only where the pre-tokenizer cuts, so counts stay exact."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
from pathlib import Path

import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenpilot._tokens import get_tokenizer
from tokenpilot._tokens._encodings import load_encoding
from tokenpilot._tokens._stream import STREAM_CHUNK_CHARS, count_stream

# Characters around which pre-tokenizers merge or split: newlines, spaces, slashes, quotes, digits.
TRICKY = st.sampled_from(
    ["\n", "\n\n", "\r\n", " ", "  ", "\t", "/", "'s", "}", "a", "Z", "7", "ü", "😀", "."]
)
TEXTS = st.lists(st.one_of(TRICKY, st.text(max_size=5)), max_size=200).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=TEXTS, cuts=st.lists(st.integers(0, 2000), max_size=8), chunk=st.integers(1, 64))
def test_chunked_count_equals_tiktoken_on_the_whole_text(text: str, cuts: list[int], chunk: int) -> None:
    bounds = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    for name in ("o200k_base", "cl100k_base"):
        encoding: tiktoken.Encoding = load_encoding(name)
        expected = len(encoding.encode_ordinary(text))
        assert count_stream(pieces, get_tokenizer(name), chunk_chars=chunk) == expected


def test_count_of_a_file_bigger_than_a_chunk_equals_tiktoken(tmp_path: Path) -> None:
    rng = random.Random(7)
    words = ["def", "return", "x", "=", "(", ")", ":", "{", "}", "/", "\n", "\n\n", "  ", "ünï", "42", "'s"]
    text = "".join(rng.choice(words) + rng.choice([" ", "", "\n"]) for _ in range(1_500_000))
    assert len(text) > 3 * STREAM_CHUNK_CHARS
    path = tmp_path / "big.txt"
    path.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "tokenpilot", "count", str(path), "--json"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    encoding: tiktoken.Encoding = load_encoding("o200k_base")
    assert json.loads(done.stdout)["total"] == len(encoding.encode_ordinary(text))
    piped = subprocess.run(
        [sys.executable, "-m", "tokenpilot", "count", "-", "--json"],
        input=text,
        capture_output=True,
        text=True,
    )
    assert json.loads(piped.stdout)["total"] == len(encoding.encode_ordinary(text))


def test_count_of_a_big_file_holds_memory_bounded_by_the_chunk(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    line = "2026-12-01 10:00:00 INFO request served in 12 ms /api/items?page=3\n"
    path.write_text(line * (64 * 1024 * 1024 // len(line)), encoding="utf-8")  # 64 MB
    code = (
        "import resource, sys; from tokenpilot.cli import main\n"
        "sys.argv = ['tokenpilot', 'count', sys.argv[1]]\n"
        "try: main()\nexcept SystemExit: pass\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    assert peak_kib < 600 * 1024, peak_kib  # whole-file counting peaks near 1 GB on this file
