"""trim on the outputs agents produce most, generated here from real tools: git log, git diff, find."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import tokenpilot as tp
from tokenpilot._trim import _stream

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
COMMIT_LINE = re.compile(
    r"^(?P<hash>[0-9a-f]{10}) (?P<date>\d{4}-\d{2}-\d{2}) (?P<author>.+?)  (?P<subject>.+)$"
)
COUNT_LINE = re.compile(r"^    \[… (?P<n>[\d,]+) (?P<what>deeper|more) entr(?:y|ies) …\]$")


def git(repo: Path, *args: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], input=stdin, capture_output=True, check=True)
    return done.stdout.decode("utf-8")


def history(tmp_path: Path, commits: int, file_bytes: int) -> Path:
    """A repository whose every commit changes a source file, written by git fast-import in one go."""
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", str(repo))
    stream = io.BytesIO()
    for n in range(commits):
        author = ["Ada Lovelace", "Linus Torvalds", "Grace Hopper"][n % 3]
        email = author.split()[0].lower()
        message = f"Change {n}: teach the parser rule {n}\n\nWhy: case {n} was rejected.\n".encode()
        body = "".join(
            f"def rule_{n}_{i}(x):\n    return x + {i}\n" for i in range(file_bytes // 30)
        ).encode()
        when = 1_700_000_000 + n * 86_400
        stream.write(b"commit refs/heads/main\n")
        stream.write(f"author {author} <{email}@example.org> {when} +0000\n".encode())
        stream.write(f"committer {author} <{email}@example.org> {when} +0000\n".encode())
        stream.write(b"data %d\n%s" % (len(message), message))
        stream.write(b"M 100644 inline src/rules_%d.py\ndata %d\n%s\n" % (n % 7, len(body), body))
    git(repo, "fast-import", "--quiet", stdin=stream.getvalue())
    git(repo, "checkout", "-q", "main")
    return repo


def stream_trim(text: str, budget: int, tool: str, monkeypatch: pytest.MonkeyPatch) -> tp.TrimResult:
    """The streaming path (as for a pipe of many megabytes), forced on a smaller output."""
    monkeypatch.setattr(_stream, "IN_MEMORY_LIMIT", 64 * 1024)
    return tp.trim_stream(io.BytesIO(text.encode()), budget, tool=tool, spill=False)


@pytest.mark.parametrize("path", ["memory", "stream"])
def test_git_log_p_keeps_one_line_per_commit_newest_first_then_diffs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    repo = history(tmp_path, 150, 3_000)
    output = git(repo, "log", "-p", "-n", "400")
    tool = "git log -p -n 400"
    result = (
        tp.trim(output, 800, tool=tool, spill=False)
        if path == "memory"
        else stream_trim(output, 800, tool, monkeypatch)
    )
    assert result.tokens <= 800 and result.format == "gitlog"
    expected = git(repo, "log", "--format=%H|%ad|%an|%s", "--date=short").splitlines()
    shown = [m for line in result.text.splitlines() if (m := COMMIT_LINE.match(line))]
    assert len(shown) >= 20
    for match, line in zip(shown, expected, strict=False):  # the newest commits, in order
        full, date, author, subject = line.split("|")
        assert (match["hash"], match["date"], match["author"], match["subject"]) == (
            full[:10],
            date,
            author,
            subject,
        )
    assert f"[… {len(expected) - len(shown):,} older commits …]" in result.text
    assert "[150 commits, newest first]" in result.text
    newest = expected[0].split("|")[0]
    assert f"commit {newest}" in result.text  # then the newest commit's own lines, by budget


def test_git_log_keeps_hashes_and_subjects_not_scattered_body_lines(tmp_path: Path) -> None:
    repo = history(tmp_path, 40, 60)
    result = tp.trim(git(repo, "log"), 300, spill=False)  # detected from the content
    assert result.format == "gitlog" and result.tokens <= 300
    shown = [m for line in result.text.splitlines() if (m := COMMIT_LINE.match(line))]
    subjects = git(repo, "log", "--format=%s").splitlines()
    assert [m["subject"] for m in shown] == subjects[: len(shown)] and len(shown) >= 5


def test_git_diff_names_every_file_with_its_counts_before_any_hunk(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", str(repo))
    for n in range(15):
        (repo / f"module_{n:02}.py").write_text("".join(f"value_{i} = {i}\n" for i in range(40 + n)))
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "start")
    for n in range(15):
        lines = (repo / f"module_{n:02}.py").read_text().splitlines()
        lines[3 : 3 + n] = [f"changed_{n}_{k} = {k}" for k in range(n + 2)]
        (repo / f"module_{n:02}.py").write_text("\n".join(lines) + "\n")
    output = git(repo, "diff")
    result = tp.trim(output, 400, tool="git diff", spill=False)
    assert result.tokens <= 400
    first_hunk = result.text.find("@@")
    head = result.text if first_hunk < 0 else result.text[:first_hunk]
    for row in git(repo, "diff", "--numstat").splitlines():
        added, removed, name = row.split("\t")
        assert f"{name} +{added} -{removed}" in head, name
    assert "[15 files changed," in head


def find_usr() -> str:
    done = subprocess.run(["find", "/usr"], capture_output=True, text=True, check=False)
    return done.stdout


@pytest.mark.parametrize("path", ["memory", "stream"])
def test_find_keeps_every_top_level_entry_with_its_true_count_and_uses_the_budget(
    monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    output = find_usr()
    lines = output.splitlines()
    assert len(lines) > 10_000
    if path == "memory":
        monkeypatch.setattr(_stream, "IN_MEMORY_LIMIT", 64 * 1024 * 1024)
    else:
        monkeypatch.setattr(_stream, "IN_MEMORY_LIMIT", 64 * 1024)
    result = tp.trim_stream(io.BytesIO(output.encode()), 800, tool="find", spill=False)
    assert result.format == "listing"
    assert 0.9 * 800 <= result.tokens <= 800  # the budget is used
    kept = result.text.splitlines()
    top_level = [line for line in lines if line.count("/") == 2]
    for entry in top_level:
        assert entry in kept, entry
    # Every source entry is shown, or counted once in the line that stands for it.
    shown = sum(1 for line in kept if line.startswith("/usr"))
    counted = sum(int(m["n"].replace(",", "")) for line in kept if (m := COUNT_LINE.match(line)))
    assert shown + counted == len(lines)
    # A top-level entry collapsed whole says how many entries it truly holds.
    for i, line in enumerate(kept[:-1]):
        if line in top_level and (m := COUNT_LINE.match(kept[i + 1])) and m["what"] == "deeper":
            beneath = sum(1 for other in lines if other.startswith(line + "/"))
            assert int(m["n"].replace(",", "")) == beneath, line
