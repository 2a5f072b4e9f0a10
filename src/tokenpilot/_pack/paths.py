"""What kind of file a path names: test, docs, issue templates and CI, source code, vendored or built.

One place for the path rules every stage uses: discovery skips vendored, build and lock files by
path (`soft_skip_reason`), ranking down-weights tests, docs and templates (`is_test_path`,
`is_docs_path`, `is_meta_path`, `is_code_path`).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

VENDORED_DIRS = frozenset(
    {
        "node_modules",
        "bower_components",
        "vendor",
        "vendors",
        "third_party",
        "thirdparty",
        "3rdparty",
        "site-packages",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".eggs",
        ".gradle",
        ".idea",
        ".vscode",
    }
)
BUILD_DIRS = frozenset({"build", "dist", "target", "out", ".next", ".nuxt", "_build", "coverage", "htmlcov"})
LOCK_FILES = frozenset(
    {
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "bun.lockb",
        "poetry.lock",
        "pipfile.lock",
        "pdm.lock",
        "uv.lock",
        "cargo.lock",
        "gemfile.lock",
        "composer.lock",
        "go.sum",
        "flake.lock",
        "packages.lock.json",
        "podfile.lock",
        "mix.lock",
    }
)
CODE_SUFFIXES = frozenset(
    [
        ".py",
        ".pyi",
        ".pyx",
        ".pxd",
        ".js",
        ".mjs",
        ".cjs",
        ".jsx",
        ".ts",
        ".mts",
        ".cts",
        ".tsx",
        ".go",
        ".rs",
        ".java",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".cxx",
        ".hpp",
        ".hh",
        ".hxx",
        ".rb",
        ".php",
        ".cs",
        ".kt",
        ".kts",
        ".swift",
        ".scala",
        ".m",
        ".mm",
        ".lua",
        ".pl",
        ".pm",
        ".r",
        ".jl",
        ".ex",
        ".exs",
        ".erl",
        ".hs",
        ".ml",
        ".clj",
        ".dart",
        ".sh",
        ".bash",
        ".zsh",
        ".sql",
        ".vue",
        ".svelte",
    ]
)
_TEST_PATH = re.compile(
    r"(^|/)(tests?|testing|__tests__|spec)(/|$)|(^|/)test_[^/]*$|_tests?\.\w+$|\.(test|spec)\.\w+$"
)
# issue and pull-request templates and CI settings: bug reports are written from the templates
_META_PATH = re.compile(r"(^|/)\.(github|gitlab|circleci)/|(^|/)(ISSUE|PULL_REQUEST)_TEMPLATE", re.IGNORECASE)
_DOCS_PATH = re.compile(r"(^|/)(docs?|doc_src|examples?|benchmarks?|changelog\.d)(/|$)|\.(rst|md|txt|adoc)$")


def is_test_path(path: str) -> bool:
    """Whether a path looks like a test file or lives in a test directory."""
    return _TEST_PATH.search(path) is not None


def is_docs_path(path: str) -> bool:
    """Whether a path looks like documentation or examples."""
    return _DOCS_PATH.search(path) is not None


def is_code_path(path: str) -> bool:
    """Whether a path is source code by its suffix (translations, changelogs, data are not).

    A gettext catalog directory holds translations whatever their suffix (Sphinx compiles its
    catalogs to `LC_MESSAGES/sphinx.js`: English messages, which match a task's words).

    >>> is_code_path("sphinx/util/i18n.py"), is_code_path("sphinx/locale/de/LC_MESSAGES/sphinx.js")
    (True, False)
    """
    return PurePosixPath(path).suffix.lower() in CODE_SUFFIXES and "LC_MESSAGES/" not in path


def is_meta_path(path: str) -> bool:
    """Whether a path is an issue/pull-request template or CI settings (`.github/`, `.gitlab/`, …)."""
    return _META_PATH.search(path) is not None


# `jquery-3.5.1.js`, `underscore-1.13.1.js`, `bootstrap.4.0.css`: a library copied in at a release
_VERSIONED_ASSET = re.compile(
    r"^[a-z][\w.-]*?[-_.]v?\d+\.\d+(?:\.\d+)*(?:[-.][a-z]\w*)?\.(?:js|mjs|cjs|css)$"
)


def soft_skip_reason(path: str) -> str | None:
    """Why a file is skipped by default (vendored, build, lock), from its path alone."""
    parts = path.split("/")
    for part in parts[:-1]:
        lowered = part.lower()
        if lowered in VENDORED_DIRS or lowered.endswith(".egg-info"):
            return f"vendored directory {part}/"
        if lowered in BUILD_DIRS:
            return f"build directory {part}/"
    name = parts[-1].lower()
    if name in LOCK_FILES or name.endswith(".lock"):
        return "lock file"
    if name.endswith((".min.js", ".min.css", ".min.mjs")) or name.endswith(".map"):
        return "minified"
    if _VERSIONED_ASSET.match(name):
        return "vendored copy (versioned name)"
    return None
