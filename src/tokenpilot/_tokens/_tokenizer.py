"""Tokenizers: exact (bundled tiktoken encodings, HuggingFace tokenizer.json, Anthropic's
count-tokens endpoint) or estimated (an o200k count times a per-family factor, `exact=False`).

A tokenizer is named by a *spec* string, the `tokenizer` field of a model:

    o200k_base | cl100k_base          bundled tiktoken encodings, exact
    hf:/path/to/tokenizer.json        a HuggingFace tokenizer file (needs the `hf` extra), exact
    anthropic-api                     Anthropic's count-tokens endpoint, only when configured, exact
    estimate:FAMILY                   o200k_base count x FAMILY_FACTORS[FAMILY], labelled exact=False
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import OrderedDict
from collections.abc import Sequence
from functools import cache
from typing import Any, Protocol, runtime_checkable

from tokenpilot._exceptions import ConfigError, EndpointError, TokenizerError
from tokenpilot._tokens._encodings import BUNDLED, load_encoding

# o200k_base tokens -> the family's tokens. Chosen to over- rather than under-count, since budgets
# are enforced on them. Basis (see README "Estimated counts"):
# - claude: Anthropic's tokenizer for Claude 3+ is not public; its count-tokens API gives 15-30%
#   more tokens than o200k_base on English and code in published comparisons, newest models more.
# - deepseek: measured with DeepSeek-V3's tokenizer.json on source code (bench/estimate_factors.py).
# - llama, qwen: 128k/151k-vocabulary BPEs close to cl100k_base, which needs ~5% more than o200k on code.
# - gemini, grok, mistral: SentencePiece / Tekken vocabularies; published ratios 1.0-1.15 to o200k.
# - unknown: no information; the largest factor.
FAMILY_FACTORS: dict[str, float] = {
    "claude": 1.25,
    "gemini": 1.15,
    "llama": 1.10,
    "qwen": 1.10,
    "mistral": 1.15,
    "deepseek": 1.10,
    "grok": 1.15,
    "unknown": 1.30,
}
# Budgets enforced on estimated counts keep this share in reserve (principle 1: exact or labelled).
ESTIMATE_MARGIN = 0.05
_CACHE_MIN_CHARS = 64
_CACHE_SIZE = 4096


@runtime_checkable
class Tokenizer(Protocol):
    """What every tokenizer offers. `count(text) == len(encode(text))` when `exact` and local."""

    name: str
    exact: bool

    def encode(self, text: str) -> list[int]: ...

    def decode(self, tokens: Sequence[int]) -> str: ...

    def count(self, text: str) -> int: ...

    def safe_budget(self, budget: int) -> int: ...


class _CountCache:
    """A bounded LRU of counts keyed by content hash, so repeated texts are counted once."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self._size = size
        self._counts: OrderedDict[bytes, int] = OrderedDict()

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def get(self, key: bytes) -> int | None:
        value = self._counts.get(key)
        if value is not None:
            self._counts.move_to_end(key)
        return value

    def put(self, key: bytes, value: int) -> None:
        self._counts[key] = value
        if len(self._counts) > self._size:
            self._counts.popitem(last=False)


class TiktokenTokenizer:
    """A bundled tiktoken encoding. Special-token text is counted as ordinary text."""

    exact = True

    def __init__(self, encoding_name: str) -> None:
        self.name = encoding_name
        self._encoding = load_encoding(encoding_name)
        self._cache = _CountCache()

    def encode(self, text: str) -> list[int]:
        return self._encoding.encode_ordinary(text)

    def decode(self, tokens: Sequence[int]) -> str:
        return self._encoding.decode(list(tokens))

    def decode_bytes(self, tokens: Sequence[int]) -> bytes:
        return self._encoding.decode_bytes(list(tokens))

    def count(self, text: str) -> int:
        if len(text) < _CACHE_MIN_CHARS:
            return len(self._encoding.encode_ordinary(text))
        key = _CountCache.key(text)
        cached = self._cache.get(key)
        if cached is None:
            cached = len(self._encoding.encode_ordinary(text))
            self._cache.put(key, cached)
        return cached

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """Counts of many texts, encoded in parallel threads by tiktoken."""
        encoded = self._encoding.encode_ordinary_batch(list(texts))
        return [len(tokens) for tokens in encoded]

    def safe_budget(self, budget: int) -> int:
        return budget


class EstimatedTokenizer:
    """o200k_base counts scaled by a family factor; `exact=False`. encode/decode use o200k ids."""

    exact = False

    def __init__(self, family: str) -> None:
        if family not in FAMILY_FACTORS:
            known = ", ".join(sorted(FAMILY_FACTORS))
            raise TokenizerError(f"no estimate factor for family {family!r} (known: {known})")
        self.family = family
        self.factor = FAMILY_FACTORS[family]
        self.name = f"estimate:{family}"
        self._base = bundled_tokenizer("o200k_base")

    def encode(self, text: str) -> list[int]:
        return self._base.encode(text)

    def decode(self, tokens: Sequence[int]) -> str:
        return self._base.decode(tokens)

    def count(self, text: str) -> int:
        return math.ceil(self._base.count(text) * self.factor)

    def safe_budget(self, budget: int) -> int:
        return math.floor(budget / (1 + ESTIMATE_MARGIN))


class HuggingFaceTokenizer:
    """An exact tokenizer from a HuggingFace `tokenizer.json` (the `tokenizers` library)."""

    exact = True

    def __init__(self, path: str) -> None:
        try:
            from tokenizers import Tokenizer as HFTokenizer
        except ImportError:
            raise ConfigError(
                "tokenizer 'hf:…' needs the `tokenizers` package: pip install 'tokenpilot[hf]'"
            ) from None
        try:
            self._tokenizer = HFTokenizer.from_file(path)
        except Exception as exc:  # the library raises bare Exception for unreadable files
            raise TokenizerError(f"cannot load tokenizer.json {path!r}: {exc}") from None
        self.name = f"hf:{path}"
        self._cache = _CountCache()

    def encode(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, tokens: Sequence[int]) -> str:
        return str(self._tokenizer.decode(list(tokens), skip_special_tokens=False))

    def count(self, text: str) -> int:
        key = _CountCache.key(text)
        cached = self._cache.get(key)
        if cached is None:
            cached = len(self.encode(text))
            self._cache.put(key, cached)
        return cached

    def safe_budget(self, budget: int) -> int:
        return budget


class AnthropicAPITokenizer:
    """Exact counts from Anthropic's `/v1/messages/count_tokens`; called only when configured.

    The endpoint counts a whole request, so `count(text)` sends one user message holding `text`
    and subtracts the count of an empty-ish request (the fixed wrapper). encode/decode are o200k
    proxies, for truncation only.
    """

    exact = True

    def __init__(self, model: str, url: str, api_key: str, timeout: float = 20.0) -> None:
        self.name = "anthropic-api"
        self._model = model
        self._url = url
        self._api_key = api_key
        self._timeout = timeout
        self._cache = _CountCache()
        self._base = bundled_tokenizer("o200k_base")
        self._wrapper: int | None = None

    def count_request(self, body: dict[str, Any]) -> int:
        import urllib.error
        import urllib.request

        payload = json.dumps({"model": self._model, **body}).encode()
        request = urllib.request.Request(
            self._url,
            data=payload,
            method="POST",
            headers={
                "content-type": "application/json",
                "x-api-key": self._api_key,
                "anthropic-version": "2023-06-01",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                answer = json.loads(response.read())
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            raise EndpointError(f"Anthropic count-tokens endpoint {self._url} failed: {exc}") from None
        tokens = answer.get("input_tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, int):
            raise EndpointError(f"Anthropic count-tokens endpoint answered without input_tokens: {answer!r}")
        return tokens

    def _user(self, text: str) -> dict[str, Any]:
        return {"messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]}

    def count(self, text: str) -> int:
        key = _CountCache.key(text)
        cached = self._cache.get(key)
        if cached is None:
            if self._wrapper is None:
                self._wrapper = self.count_request(self._user("."))
            cached = max(0, self.count_request(self._user(text)) - self._wrapper + 1)
            self._cache.put(key, cached)
        return cached

    def encode(self, text: str) -> list[int]:
        return self._base.encode(text)

    def decode(self, tokens: Sequence[int]) -> str:
        return self._base.decode(tokens)

    def safe_budget(self, budget: int) -> int:
        return budget


@cache
def bundled_tokenizer(name: str) -> TiktokenTokenizer:
    """One shared TiktokenTokenizer per bundled encoding."""
    return TiktokenTokenizer(name)


@cache
def get_tokenizer(spec: str) -> Tokenizer:
    """The tokenizer for a local spec (bundled, estimate:, hf:). Cached: built once per spec."""
    if spec in BUNDLED:
        return bundled_tokenizer(spec)
    if spec.startswith("estimate:"):
        return EstimatedTokenizer(spec.removeprefix("estimate:"))
    if spec.startswith("hf:"):
        return HuggingFaceTokenizer(spec.removeprefix("hf:"))
    raise TokenizerError(
        f"unknown tokenizer {spec!r}: use o200k_base, cl100k_base, hf:PATH, anthropic-api or estimate:FAMILY"
    )


@cache
def anthropic_api_tokenizer(model: str, url: str, api_key_env: str) -> AnthropicAPITokenizer:
    api_key = os.environ.get(api_key_env)
    if not api_key:
        raise ConfigError(
            f"tokenizer 'anthropic-api' needs an API key in ${api_key_env}", key="anthropic.api_key_env"
        )
    return AnthropicAPITokenizer(model, url, api_key)
