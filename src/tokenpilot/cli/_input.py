"""Reading a command's input: a file path or '-' for stdin, JSON, budgets; clear errors, no traceback."""

from __future__ import annotations

import json
import re
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tokenpilot._exceptions import InputError

# No model's window comes near 100M tokens: a larger fit budget is a typo, not a wish.
MAX_FIT_BUDGET = 100_000_000
# A trillion tokens is millions of dollars at any price: a larger account budget is a typo.
MAX_ACCOUNT_TOKENS = 1_000_000_000_000
MAX_USD = 1_000_000_000
ACCOUNT_LIMITS = {"minimum": 0, "maximum": MAX_ACCOUNT_TOKENS}
# Python's json recurses per level; past this a document is refused before it can overflow the stack.
MAX_JSON_DEPTH = 500
BINARY_SNIFF = 8192
BUDGET_SYNTAX = re.compile(r"(?P<number>\d+(?:\.\d+)?|\.\d+)(?P<scale>[km]?)")
_SCALES = {"": 1, "k": 1_000, "m": 1_000_000}


def is_binary(data: bytes) -> bool:
    """True when the first 8 KiB of `data` hold a NUL byte: text never does (the test count skips by)."""
    return b"\0" in data[:BINARY_SNIFF]


def read_source(source: str | Path, what: str = "file") -> str:
    """The text of `source` ('-' reads stdin), or an InputError naming it."""
    if str(source) == "-":
        return sys.stdin.read()
    path = Path(source)
    if path.is_dir():
        raise InputError(f"{source} is a directory; give a {what}")
    if not path.is_file():
        raise InputError(f"no such {what}: {source}")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {source}: {exc}") from None


def too_deep(data: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when arrays and objects in `data` nest more than `limit` levels (checked without recursion).

    >>> too_deep([[[1]]], 2), too_deep({"a": [1, {"b": 2}]}, 3)
    (True, False)
    """
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_json(text: str, source: str) -> Any:
    """The JSON document in `text`, or one InputError line: invalid, or nested too deeply to work on."""
    deep = InputError(f"{source}: JSON nested more than {MAX_JSON_DEPTH} levels deep; refusing it")
    try:
        data = json.loads(text)
    except RecursionError:
        raise deep from None
    except ValueError as exc:
        raise InputError(f"{source}: not valid JSON ({exc})") from None
    if too_deep(data):
        raise deep
    return data


def parse_budget(
    value: str | int,
    option: str = "--budget",
    *,
    minimum: int = 1,
    maximum: int = MAX_FIT_BUDGET,
) -> int:
    """Tokens from `20000`, `16k`, `1.5m` (case-insensitive, `_` and `,` allowed), exactly.

    >>> parse_budget("16k"), parse_budget("1.5m"), parse_budget("20_000")
    (16000, 1500000, 20000)
    """
    text = str(value).strip().lower().replace("_", "").replace(",", "")
    match = BUDGET_SYNTAX.fullmatch(text)
    if match is None:
        raise InputError(f"{option}: not a token budget: {value!r} (use e.g. 20000, 16k, 1.5m)")
    tokens = Decimal(match.group("number")) * _SCALES[match.group("scale")]
    if tokens != tokens.to_integral_value():
        raise InputError(f"{option}: a budget is a whole number of tokens, got {value!r}")
    if tokens > maximum:
        raise InputError(f"{option}: {int(tokens):,} tokens is more than any budget can be ({maximum:,})")
    if tokens < minimum:
        raise InputError(f"{option}: a budget is at least {minimum:,} token{'s' * (minimum != 1)}")
    return int(tokens)


def parse_optional_budget(value: str | None, option: str, **limits: int) -> int | None:
    """`parse_budget`, or None when the option was not given."""
    return None if value is None else parse_budget(value, option, **limits)


def parse_usd(value: str | None, option: str = "--usd") -> float | None:
    """US dollars from `25`, `2.50` or `1_000`; None when not given.

    >>> parse_usd("2.50")
    2.5
    """
    if value is None:
        return None
    text = value.strip().removeprefix("$").replace("_", "").replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise InputError(f"{option}: not an amount of US dollars: {value!r} (use e.g. 25 or 2.50)") from None
    if not amount.is_finite() or amount < 0:
        raise InputError(f"{option}: an amount of US dollars is a number >= 0, got {value!r}")
    if amount > MAX_USD:
        raise InputError(f"{option}: {value} dollars is more than any budget can be (${MAX_USD:,})")
    return float(amount)


def parse_threshold(value: str | None, option: str) -> float | int | None:
    """A compaction threshold: a fraction of the budget (`0.8`, `80%`) or tokens (`12000`, `12k`).

    >>> parse_threshold("0.8", "--trigger"), parse_threshold("80%", "--trigger"), parse_threshold("12k", "-")
    (0.8, 0.8, 12000)
    """
    if value is None:
        return None
    text = value.strip().lower()
    try:
        if text.endswith("%"):
            fraction = Decimal(text[:-1]) / 100
        elif text[-1:] in ("k", "m") or "." not in text:
            tokens = parse_budget(text, option)
            return 1.0 if tokens == 1 else tokens  # `1` has always meant the whole budget
        else:
            fraction = Decimal(text)
    except (InvalidOperation, InputError):
        raise InputError(
            f"{option}: not a threshold: {value!r} "
            "(a fraction of the budget like 0.8 or 80%, or tokens like 12k)"
        ) from None
    if not fraction.is_finite() or not 0 < fraction <= 1:
        raise InputError(
            f"{option}: {value} is neither a fraction of the budget (0 < x <= 1) nor a whole number of tokens"
        )
    return float(fraction)
