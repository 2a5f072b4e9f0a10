"""Stage 2: keep credentials out of every tier.

Three layers, so that a miss in one is caught by another:

1. by name: `.env*`, private keys, keystores and credential files are excluded before reading;
2. by pattern: private-key blocks (BEGIN … END, every line), AWS access keys, GitHub/GitLab/Slack/
   Stripe tokens, and `password = "…"`-style assignments (quoted anywhere; unquoted in config and
   shell files) are matched by regular expressions written here;
3. by scanner: lines that could hold a secret (a keyword or a long token on them) are run through
   detect-secrets' plugins and filters (the maintained scanner), with the file's name for context.

A secret line is replaced by a marker that keeps its indentation and says what was there
(`⟦redacted: AWS Access Key⟧`), or the whole file is dropped (`mode="drop"`). Line numbers do not
move, so outlines made from the redacted text point at the right lines.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

log = logging.getLogger(__name__)

REDACTION_MARKER = "⟦redacted: {kind}⟧"

_CREDENTIAL_NAMES = re.compile(
    r"""^(
        \.env(\..*)?            # .env, .env.local, .env.production
      | .*\.env
      | id_(rsa|dsa|ecdsa|ed25519)(\.pub)?
      | .*\.(pem|key|p12|pfx|keystore|jks|kdbx|ppk|asc|gpg|ovpn)
      | \.netrc | _netrc | \.pgpass | \.npmrc | \.pypirc | \.dockercfg | \.git-credentials
      | credentials(\..*)? | .*-credentials\.json | service[-_]account.*\.json
      | secrets?\.(ya?ml|json|toml|ini|cfg|conf|properties|txt)
      | htpasswd | \.htpasswd
    )$""",
    re.VERBOSE | re.IGNORECASE,
)
_CREDENTIAL_DIRS = frozenset({".ssh", ".aws", ".gnupg", ".docker"})
_EXAMPLE_NAMES = re.compile(r"\.(example|sample|template|dist)$", re.IGNORECASE)

_PRIVATE_KEY_BEGIN = re.compile(r"-----BEGIN[ A-Z0-9_-]*PRIVATE KEY( BLOCK)?-----")
_PRIVATE_KEY_END = re.compile(r"-----END[ A-Z0-9_-]*PRIVATE KEY( BLOCK)?-----")
# what the body of a PEM block can look like (base64, headers such as "Proc-Type: 4,ENCRYPTED")
_KEY_BODY = re.compile(r"^[\sA-Za-z0-9+/=:,\"'-]*(-----END[ A-Z0-9_-]*-----)?[\s\"',;)\\n]*$")
_KEYWORDS = (
    r"pass(word|wd|phrase)?|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key"
    r"|client[_-]?secret|auth[_-]?key|credential|session[_-]?key|signing[_-]?key|encryption[_-]?key"
)
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("AWS Access Key", re.compile(r"\b(AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b")),
    ("GitHub Token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})")),
    ("GitLab Token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("Slack Token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("Stripe Key", re.compile(r"\b[rs]k_(live|test)_[A-Za-z0-9]{16,}")),
    ("Google API Key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("OpenAI Key", re.compile(r"\bsk-(proj-)?[A-Za-z0-9_-]{32,}")),
    ("JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")),
    ("Credentials in URL", re.compile(r"[a-z][a-z0-9+.-]*://[^\s:/@'\"]+:[^\s@/'\"]{3,}@[^\s'\"]+")),
    (
        "Secret Keyword",
        # a keyword-named key assigned a quoted literal of 6+ characters
        re.compile(
            rf"""(?i)[\w.-]*({_KEYWORDS})[\w.-]*["']?\s*(:=|=>|=|:)\s*[bru]?(["'])(?=[^"'\s]{{6,}})[^"']*\3"""
        ),
    ),
)
# Config and shell files also assign secrets unquoted: DB_PASSWORD=hunter2
_UNQUOTED_KEYWORD = re.compile(
    rf"""(?i)^\s*(export\s+)?[\w.-]*({_KEYWORDS})[\w.-]*\s*(=|:)\s*(?!\s*$)[^\s"'#${{(<]{{4,}}"""
)
_CONFIG_SUFFIXES = frozenset(
    [
        ".sh",
        ".bash",
        ".zsh",
        ".ini",
        ".cfg",
        ".conf",
        ".config",
        ".properties",
        ".toml",
        ".yaml",
        ".yml",
        ".env",
        ".txt",
        ".tf",
        ".tfvars",
    ]
)
# a few fast passes over the whole text find the lines worth a closer look: a token prefix, a key
# block, a URL with a password, a keyword being assigned (on the lowercased text), a long quoted
# string, or a long token mixing letters and digits. The patterns define them; `_suspect_lines`
# finds the same lines faster (tests/test_pack_parallel.py checks it against these patterns)
_SUSPECT_LITERAL = re.compile(
    r"AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|gh[pousr]_|github_pat_|glpat-|xox[abposr]-|[rs]k_live_|[rs]k_test_"
    r"|AIza|sk-|eyJ|-----BEGIN|://[^\s:/@'\"]+:[^\s@/'\"]{3,}@"
)
_SUSPECT_KEYWORD = re.compile(rf"(?:{_KEYWORDS})[\w.-]*[\"']?\s*(?::=|=>|=|:)")
_SUSPECT_QUOTED = re.compile(r"[\"'][^\"'\s]{16,}[\"']")
_SUSPECT_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{32,}")
_HAS_DIGIT = re.compile(r"\d")
_HAS_LETTER = re.compile(r"[A-Za-z]")
# what each of _SUSPECT_LITERAL's and _SUSPECT_KEYWORD's alternatives starts with, and the
# pattern to confirm at a needle's place (None: the needle alone is a match)
_LITERAL_NEEDLES: tuple[tuple[str, re.Pattern[str] | None], ...] = (
    *((prefix, None) for prefix in ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA")),
    ("gh", re.compile(r"gh[pousr]_")),
    ("github_pat_", None),
    ("glpat-", None),
    ("xox", re.compile(r"xox[abposr]-")),
    *((prefix, None) for prefix in ("rk_live_", "sk_live_", "rk_test_", "sk_test_", "AIza", "sk-", "eyJ")),
    ("-----BEGIN", None),
    ("://", re.compile(r"://[^\s:/@'\"]+:[^\s@/'\"]{3,}@")),
)
_KEYWORD_STARTS = ("pass", "pwd", "secret", "token", "api", "access", "private", "client", "auth")
_KEYWORD_NEEDLES: tuple[tuple[str, re.Pattern[str] | None], ...] = tuple(
    (needle, _SUSPECT_KEYWORD)
    for needle in (*_KEYWORD_STARTS, "credential", "session", "signing", "encryption")
)
_TOKEN_BYTES = bytes(
    0x61 if chr(c).isascii() and (chr(c).isalnum() or chr(c) in "+/=_-") else 0x20 for c in range(256)
)
_TOKEN_RUN = b"a" * 32  # _SUSPECT_TOKEN's shortest run
_HAS_DIGIT_BYTES = re.compile(rb"[0-9]")
_HAS_LETTER_BYTES = re.compile(rb"[A-Za-z]")
_scanner_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Finding:
    """One redacted line (1-based) and the kind of secret found on it."""

    line: int
    kind: str


def credential_file_reason(path: str) -> str | None:
    """`'credentials file'` when a file's path says it holds credentials, else None."""
    *directories, name = path.split("/")
    if any(part.lower() in _CREDENTIAL_DIRS for part in directories):
        return "credentials file (excluded by name)"
    if _EXAMPLE_NAMES.search(name) and not name.lower().endswith((".pem", ".key")):
        return None  # .env.example and friends document variables, they hold no values
    if _CREDENTIAL_NAMES.match(name):
        return "credentials file (excluded by name)"
    return None


def find_secrets(path: str, text: str, *, use_scanner: bool = True) -> tuple[Finding, ...]:
    """Every line (1-based, lines split on "\\n") of `text` that holds a secret, sorted by line.

    >>> find_secrets("a.py", 'key = "AKIAIOSFODNN7EXAMPLE"\\n')
    (Finding(line=1, kind='AWS Access Key'),)
    """
    lines = text.split("\n")
    suspects = _suspect_lines(text)
    if not suspects:
        return ()
    found: dict[int, str] = {}
    config_like = (
        PurePosixPath(path).suffix.lower() in _CONFIG_SUFFIXES or "." not in PurePosixPath(path).name
    )
    candidates: list[tuple[int, str]] = []
    key_block_until = -1
    for index in sorted(suspects):
        if index <= key_block_until:
            continue
        line = lines[index]
        number = index + 1
        if _PRIVATE_KEY_BEGIN.search(line):
            key_block_until = _key_block_end(lines, index)
            for inside in range(index, key_block_until + 1):
                found[inside + 1] = "Private Key"
            continue
        for kind, pattern in _PATTERNS:
            if pattern.search(line):
                found[number] = kind
                break
        else:
            if config_like and _UNQUOTED_KEYWORD.search(line):
                found[number] = "Secret Keyword"
            else:
                candidates.append((number, line))
    if use_scanner and candidates:
        for number, kind in _scan(path, candidates):
            found.setdefault(number, kind)
    return tuple(Finding(line, kind) for line, kind in sorted(found.items()))


def _suspect_lines(text: str) -> set[int]:
    """Indexes of the lines the fast passes over the whole text find worth a closer look."""
    starts: list[int] = []
    # the literal and keyword passes: no match spans a line (a keyword's may end on the next line,
    # but only in whitespace and `=`/`:`), so the lines holding a match start are the lines of the
    # places the pattern matches at; those begin with a needle, which str.find skips to quickly
    starts.extend(_needle_matches(text, _LITERAL_NEEDLES))
    starts.extend(_needle_matches(text.lower(), _KEYWORD_NEEDLES))
    # keys mix letters and digits; long quoted words ('extended_nonnegative') are not worth a scan
    starts.extend(
        m.start()
        for m in _SUSPECT_QUOTED.finditer(text)
        if _HAS_DIGIT.search(m.group(0)) and _HAS_LETTER.search(m.group(0))
    )
    suspects: set[int] = set()
    line = 0
    position = 0
    for start in sorted(starts):
        line += text.count("\n", position, start)
        position = start
        suspects.add(line)
    suspects.update(_token_lines(text))
    return suspects


def _needle_matches(text: str, needles: Sequence[tuple[str, re.Pattern[str] | None]]) -> list[int]:
    """Where in `text` one of the needles starts a match of its pattern (None: the needle is one)."""
    found: list[int] = []
    for needle, pattern in needles:
        at = text.find(needle)
        while at >= 0:
            if pattern is None or pattern.match(text, at):
                found.append(at)
            at = text.find(needle, at + 1)
    return found


def _token_lines(text: str) -> set[int]:
    """Lines of the runs of 32+ token characters (`_SUSPECT_TOKEN`) that mix letters and digits.

    The runs are found in the text's UTF-8 bytes with every token byte made `a`: `bytes.find` of 32
    `a`s skips ahead by whole runs (the token characters are ASCII, so the runs and lines are those
    of the text).
    """
    data = text.encode("utf-8", "surrogatepass")
    marked = data.translate(_TOKEN_BYTES)
    lines: set[int] = set()
    line = 0
    position = 0
    at = marked.find(_TOKEN_RUN)
    while at >= 0:
        end = marked.find(b" ", at)
        if end < 0:
            end = len(marked)
        run = data[at:end]
        if _HAS_DIGIT_BYTES.search(run) and _HAS_LETTER_BYTES.search(run):
            line += data.count(b"\n", position, at)
            position = at
            lines.add(line)
        at = marked.find(_TOKEN_RUN, end)
    return lines


def _key_block_end(lines: list[str], begin: int) -> int:
    """The last line of a PEM block starting at `begin`: its END line, or the last body-like line."""
    if _PRIVATE_KEY_END.search(lines[begin]):
        return begin
    last = begin
    for index in range(begin + 1, len(lines)):
        if _PRIVATE_KEY_END.search(lines[index]):
            return index
        if not _KEY_BODY.match(lines[index]):
            break  # the block ended without an END line: the rest is judged afresh
        last = index
    return last


def load_scanner() -> None:
    """Import detect-secrets now (before forking workers: one import instead of one per worker)."""
    try:
        from detect_secrets.core import scan  # noqa: F401
        from detect_secrets.settings import default_settings  # noqa: F401
    except ImportError:
        pass


def _scan(path: str, lines: Sequence[tuple[int, str]]) -> list[tuple[int, str]]:
    """detect-secrets' line plugins and filters over the given lines (numbers kept)."""
    try:
        from detect_secrets.core import scan as ds_scan
        from detect_secrets.settings import default_settings
    except ImportError:  # detect-secrets is a core dependency; without it the expressions above still apply
        log.warning("detect-secrets is not installed; secret scanning uses built-in patterns only")
        return []
    results: list[tuple[int, str]] = []
    # detect-secrets keeps its settings in a global; one scan at a time
    with _scanner_lock, default_settings():
        for secret in ds_scan._process_line_based_plugins(lines=list(lines), filename=path):
            results.append((secret.line_number, secret.type))
    return results


def redact(text: str, findings: Sequence[Finding]) -> str:
    """`text` with each finding's line replaced by a marker that keeps the line's indentation."""
    if not findings:
        return text
    lines = text.split("\n")
    for finding in findings:
        index = finding.line - 1
        if 0 <= index < len(lines):
            original = lines[index]
            indent = original[: len(original) - len(original.lstrip())]
            lines[index] = indent + REDACTION_MARKER.format(kind=finding.kind)
    return "\n".join(lines)
