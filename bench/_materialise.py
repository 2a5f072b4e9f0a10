"""Materialise a commit of a bare git clone as a plain directory tree, skipping blobs the snapshot lacks.

python bench/_materialise.py /work/.mirror/sympy+sympy/repo SHA /tmp/trees/sympy-SHA
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def bad_paths(repo: Path, sha: str) -> list[str]:
    """Paths whose blob the snapshot lacks (`git ls-tree -rl` shows size BAD)."""
    listed = subprocess.run(
        ["git", "-C", str(repo), "ls-tree", "-rlz", sha], capture_output=True, check=True
    ).stdout.decode("utf-8", "surrogateescape")
    bad = []
    for entry in listed.split("\0"):
        if not entry:
            continue
        meta, _, path = entry.partition("\t")
        if meta.split()[-1] == "BAD":
            bad.append(path)
    return bad


def materialise(repo: Path, sha: str, dest: Path) -> Path:
    """Extract `sha` of `repo` into `dest` once; a `.complete` marker makes reuse safe."""
    marker = dest.with_name(dest.name + ".complete")
    if marker.exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    excludes = [f":(exclude,literal){path}" for path in bad_paths(repo, sha)]
    archive = subprocess.Popen(
        ["git", "-C", str(repo), "archive", sha, "--", ".", *excludes], stdout=subprocess.PIPE
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise RuntimeError(f"git archive failed for {repo} {sha}")
    marker.write_text(sha + "\n")
    return dest


if __name__ == "__main__":
    print(materialise(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))
