"""Which reducer fits an output: by the tool's name first, then by sniffing the content."""

from __future__ import annotations

import re
import shlex
from pathlib import PurePath

from tokenpilot._trim import (
    diagnostics,
    diffs,
    gitlog,
    json_output,
    listings,
    logs,
    tests_output,
    tracebacks,
)

FORMATS = (
    "pytest",
    "unittest",
    "traceback",
    "diagnostics",
    "log",
    "json",
    "gitlog",
    "diff",
    "listing",
    "text",
)

TOOL_FORMATS: dict[str, str] = {
    "pytest": "pytest",
    "py.test": "pytest",
    "unittest": "unittest",
    **dict.fromkeys(
        (
            "gcc",
            "g++",
            "cc",
            "c++",
            "clang",
            "clang++",
            "tsc",
            "rustc",
            "cargo",
            "mypy",
            "ruff",
            "pyright",
            "flake8",
            "make",
            "cmake",
            "ninja",
            "go",
            "javac",
        ),
        "diagnostics",
    ),
    **dict.fromkeys(("diff", "git-diff", "git diff", "git show"), "diff"),
    **dict.fromkeys(("git log", "git-log"), "gitlog"),
    **dict.fromkeys(("ls", "find", "tree", "fd"), "listing"),
    **dict.fromkeys(("jq",), "json"),
    **dict.fromkeys(("journalctl", "docker logs", "kubectl logs", "logs"), "log"),
    **{name: name for name in FORMATS},
}
_RUNNERS = {"python", "python3", "uv", "poetry", "pipx", "npx", "env"}
_PY_MODULE = re.compile(r"^python[\d.]*$")


def tool_name(tool: str) -> str:
    """The program a command line runs: `python -m pytest -x` -> `pytest`, `/usr/bin/gcc` -> `gcc`,
    `git diff HEAD` -> `git diff`."""
    try:
        words = shlex.split(tool)
    except ValueError:
        words = tool.split()
    words = [w for w in words if "=" not in w or w.startswith("-")]  # drop VAR=value prefixes
    while words:
        name = PurePath(words[0]).name.lower()
        if _PY_MODULE.match(name) and len(words) > 2 and words[1] == "-m":
            return PurePath(words[2]).name.lower()
        if name in _RUNNERS and len(words) > 1 and not _PY_MODULE.match(name):
            words = words[1:]
            continue
        if name in ("git", "docker", "kubectl") and len(words) > 1:
            return f"{name} {words[1].lower()}"
        return name
    return ""


def format_for_tool(tool: str | None) -> str | None:
    if not tool:
        return None
    name = tool_name(tool)
    return TOOL_FORMATS.get(name) or TOOL_FORMATS.get(tool.strip().lower())


def sniff(lines: list[str]) -> str:
    """The format the content looks like ('text' when none)."""
    if not lines:
        return "text"
    first = next((line for line in lines if line.strip()), "").lstrip()
    if first[:1] in ("{", "[") and sum(len(line) for line in lines) < 64_000_000:
        try:
            json_output.parse("\n".join(lines))
            return "json"
        except ValueError:
            pass
    if gitlog.looks_like_git_log(lines):
        return "gitlog"
    if diffs.looks_like_diff(lines):
        return "diff"
    head_and_tail = lines[:300] + lines[-300:]
    if any("test session starts" in line or tests_output.FINAL_SUMMARY.match(line) for line in head_and_tail):
        return "pytest"
    if any(tests_output.UNITTEST_RAN.match(line) for line in lines[-50:]):
        return "unittest"
    heads = sum(
        1 for line in lines[:2000] if diagnostics._head(line) and not diagnostics.HEADS[-1].match(line)
    )
    arrows = sum(1 for line in lines[:2000] if diagnostics.ARROW.match(line))
    if heads >= 1 and (heads >= 2 or arrows or any(diagnostics.SUMMARY.match(x) for x in lines[-20:])):
        return "diagnostics"
    if arrows >= 1 and any(diagnostics.HEADS[-1].match(line) for line in lines[:2000]):
        return "diagnostics"
    if any(tracebacks.TRACEBACK_HEAD.match(line) for line in lines[:5000] + lines[-2000:]):
        return "traceback"
    if listings.kind(lines):
        return "listing"
    if logs.looks_like_log(lines):
        return "log"
    return "text"


def detect(lines: list[str], tool: str | None) -> str:
    """The tool's format when its name is known, else what the content looks like."""
    return format_for_tool(tool) or sniff(lines)
