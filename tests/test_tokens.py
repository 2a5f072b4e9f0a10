"""Counting text: bundled encodings identical to tiktoken's definitions, offline, cached, truncation."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st

import tokenpilot as tp
from tokenpilot._tokens import _encodings

SAMPLES = [
    "hello world",
    "def f(x):\n    return x ** 2  # square\n",
    "Ünïcödé — 日本語のテキスト, emoji 🚀🚀 and <|endoftext|> as plain text",
    "    \n\n\t  trailing spaces   \n",
    "x" * 5000,
]


def reference_encoding(name: str) -> tiktoken.Encoding:
    """tiktoken's own definition of the encoding, fed our bundled ranks instead of a download."""
    import tiktoken_ext.openai_public as public

    filename, sha256, _, _ = _encodings.BUNDLED[name]
    ranks = _encodings.parse_ranks(_encodings.read_verified(filename, sha256))
    original = public.load_tiktoken_bpe
    public.load_tiktoken_bpe = lambda *args, **kwargs: ranks  # type: ignore[assignment]
    try:
        spec = getattr(public, name)()
    finally:
        public.load_tiktoken_bpe = original
    return tiktoken.Encoding(**spec)


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_bundled_encoding_matches_tiktokens_definition(name: str) -> None:
    ours = _encodings.load_encoding(name)
    reference = reference_encoding(name)
    assert ours._pat_str == reference._pat_str
    assert ours._special_tokens == reference._special_tokens
    for text in SAMPLES:
        assert ours.encode_ordinary(text) == reference.encode_ordinary(text)


def test_corrupt_encoding_file_is_refused() -> None:
    filename, _, _, _ = _encodings.BUNDLED["o200k_base"]
    with pytest.raises(tp.TokenizerError, match="corrupt"):
        _encodings.read_verified(filename, "0" * 64)


def test_counting_works_with_network_unreachable_and_no_tiktoken_cache(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network disabled by test")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        import tokenpilot as tp
        print(tp.count_tokens("hello world", model="gpt-4o"), tp.count_tokens("hello world", model="gpt-4"))
        """
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty")}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "2"]
    assert not (tmp_path / "empty").exists()  # tiktoken's download cache was never used


def test_model_selects_tokenizer_family() -> None:
    assert tp.tokenizer_for("gpt-4o").name == "o200k_base"
    assert tp.tokenizer_for("gpt-4.1-mini").name == "o200k_base"
    assert tp.tokenizer_for("gpt-5").name == "o200k_base"
    assert tp.tokenizer_for("o3-mini").name == "o200k_base"
    assert tp.tokenizer_for("gpt-4").name == "cl100k_base"
    assert tp.tokenizer_for("gpt-3.5-turbo").name == "cl100k_base"


def test_unshipped_tokenizer_gives_labelled_estimate_above_o200k() -> None:
    claude = tp.tokenizer_for("claude-sonnet-4-5")
    assert claude.exact is False
    text = SAMPLES[1] * 20
    assert claude.count(text) > tp.count_tokens(text, model="gpt-4o")
    assert claude.safe_budget(1000) < 1000
    assert tp.tokenizer_for("gpt-4o").safe_budget(1000) == 1000


def test_default_model_is_gpt_4o_and_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert tp.get_model().name == "gpt-4o"
    monkeypatch.setenv("TOKENPILOT_MODEL", "gpt-4")
    assert tp.get_model().name == "gpt-4"
    assert tp.tokenizer_for(None).name == "cl100k_base"


def test_default_model_from_project_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tokenpilot.toml").write_text('default_model = "gpt-3.5-turbo"\n')
    monkeypatch.chdir(tmp_path)
    assert tp.get_model().name == "gpt-3.5-turbo"


def test_repeated_text_is_counted_once() -> None:
    tokenizer = tp.tokenizer_for("gpt-4o")
    text = "repeated content " * 100
    first = tokenizer.count(text)
    calls = []
    encoding = tokenizer._encoding  # type: ignore[attr-defined]
    original = encoding.encode_ordinary

    class Spy:
        def __getattr__(self, name: str) -> object:
            return getattr(encoding, name)

        def encode_ordinary(self, value: str) -> list[int]:
            calls.append(value)
            return original(value)

    tokenizer._encoding = Spy()  # type: ignore[attr-defined]
    try:
        assert tokenizer.count(text) == first
        assert calls == []
        tokenizer.count(text + "!")
        assert len(calls) == 1
    finally:
        tokenizer._encoding = encoding  # type: ignore[attr-defined]


def test_count_tokens_rejects_non_text() -> None:
    with pytest.raises(tp.InputError):
        tp.count_tokens(b"bytes")  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=300), n=st.integers(min_value=0, max_value=80))
def test_truncate_is_a_prefix_within_n_tokens(text: str, n: int) -> None:
    cut = tp.truncate_to_tokens(text, n, model="gpt-4o")
    assert text.startswith(cut)
    assert tp.count_tokens(cut, model="gpt-4o") <= n
    if tp.count_tokens(text, model="gpt-4o") <= n:
        assert cut == text


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(alphabet="日本語🚀éa ", min_size=1, max_size=120), n=st.integers(min_value=1, max_value=40)
)
def test_truncate_never_splits_a_utf8_character(text: str, n: int) -> None:
    cut = tp.truncate_to_tokens(text, n, model="gpt-4")
    assert "\ufffd" not in cut
    assert text.startswith(cut)


def test_truncate_keeps_whole_tokens() -> None:
    text = "alpha beta gamma delta epsilon"
    assert tp.truncate_to_tokens(text, 3, model="gpt-4o") == "alpha beta gamma"
    assert tp.truncate_to_tokens(text, 0, model="gpt-4o") == ""
    with pytest.raises(tp.InputError):
        tp.truncate_to_tokens(text, -1)


def test_truncate_for_estimated_model_respects_estimate() -> None:
    text = "word " * 500
    cut = tp.truncate_to_tokens(text, 100, model="claude-sonnet-4-5")
    assert tp.count_tokens(cut, model="claude-sonnet-4-5") <= 100
    assert len(cut) > 0
