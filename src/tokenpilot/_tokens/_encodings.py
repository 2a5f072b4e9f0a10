"""The BPE encodings shipped inside the package, loaded through tiktoken with no network access.

The data files are tiktoken's own `.tiktoken` files (as cached by tiktoken and redistributed in the
`litellm` wheel). Each is checked against the SHA-256 that tiktoken itself expects
(`tiktoken_ext/openai_public.py`) before use, so a corrupt or substituted file is refused.
"""

from __future__ import annotations

import binascii
import hashlib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from tokenpilot._exceptions import TokenizerError

if TYPE_CHECKING:
    import tiktoken

ENDOFTEXT = "<|endoftext|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"
ENDOFPROMPT = "<|endofprompt|>"

# Split patterns and special tokens exactly as in tiktoken_ext/openai_public.py.
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

# name -> (data file, SHA-256 tiktoken expects, split pattern, special tokens)
BUNDLED: dict[str, tuple[str, str, str, dict[str, int]]] = {
    "o200k_base": (
        "o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        _O200K_PATTERN,
        {ENDOFTEXT: 199999, ENDOFPROMPT: 200018},
    ),
    "cl100k_base": (
        "cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        _CL100K_PATTERN,
        {
            ENDOFTEXT: 100257,
            FIM_PREFIX: 100258,
            FIM_MIDDLE: 100259,
            FIM_SUFFIX: 100260,
            ENDOFPROMPT: 100276,
        },
    ),
}


def read_verified(filename: str, expected_sha256: str) -> bytes:
    """The bytes of a bundled data file, refused if its SHA-256 is not the expected one."""
    data = (Path(__file__).parent / "data" / filename).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise TokenizerError(
            f"bundled encoding {filename} is corrupt: SHA-256 {actual}, expected {expected_sha256}"
        )
    return data


def parse_ranks(data: bytes) -> dict[bytes, int]:
    """tiktoken's `.tiktoken` format: one `base64(token) rank` pair per line."""
    # binascii directly: base64.b64decode is this call behind a per-call type check (~40% of the load)
    decode = binascii.a2b_base64
    return {decode(token): int(rank) for token, rank in (line.split() for line in data.splitlines() if line)}


@cache
def load_encoding(name: str) -> tiktoken.Encoding:
    """A tiktoken Encoding built from the bundled file; never touches the network or tiktoken's cache."""
    import tiktoken

    if name not in BUNDLED:
        raise TokenizerError(f"no bundled encoding {name!r} (bundled: {', '.join(BUNDLED)})")
    filename, sha256, pattern, special = BUNDLED[name]
    return tiktoken.Encoding(
        name=name,
        pat_str=pattern,
        mergeable_ranks=parse_ranks(read_verified(filename, sha256)),
        special_tokens=special,
    )
