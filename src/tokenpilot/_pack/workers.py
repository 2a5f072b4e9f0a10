"""Worker processes for the cold stages (the features of every file, the files looked at closely).

A cold pack computes per-file results that depend on one file's text alone; on a machine with idle
CPUs they are computed in forked worker processes and merged in the order they were asked for, so
the result is the one computed in-process. Workers are used only on Linux, only from a process
with no other thread (a fork copies no thread, so a lock another thread held would stay held in
the child), and only while the load average leaves an idle CPU beside this process: on a busy
machine workers add their overhead and take nothing off the wall time.
`TOKENPILOT_PACK_WORKERS=N` sets the number, `0` computes in-process; unset (or `auto`) the load
average decides, always only where forking is safe. The "first run with workers took twice as long"
of 1 Dec 2026 was the page cache, not the workers: the tree's pages had gone cold (this VM reclaims
idle page cache), so the first run of an A/B — the workers' side each time — read the tree from the
disk (discovery 7.2 s for the nine repositories with the pages dropped, workers or not; 1.2–1.8 s
with them cached). On by default (`auto`) since the quiet runs of 2 Dec 2026 15:20 UTC, where they
won every pair: a cold sympy pack 2.37 s against 3.03 s in-process, the nine repositories 6.6
against 8.6 s (docs/pack.md); on a busy machine the load rule keeps them off.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

MAX_WORKERS = 4
MIN_IDLE_CPUS = 0.5  # CPUs minus the 1-minute load average (which counts this process)
WORKERS_ENV = "TOKENPILOT_PACK_WORKERS"


def pool_workers() -> int:
    """How many worker processes a cold stage may start now (0: compute in-process)."""
    if sys.platform != "linux" or threading.active_count() > 1:
        return 0
    configured = os.environ.get(WORKERS_ENV, "").strip().lower() or "auto"
    if configured.isdigit():
        return min(int(configured), MAX_WORKERS)
    if configured != "auto":
        return 0
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    idle = cpus - os.getloadavg()[0]
    return min(cpus, MAX_WORKERS) if cpus > 1 and idle >= MIN_IDLE_CPUS else 0


def fork_pool(
    workers: int, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
) -> ProcessPoolExecutor:
    """A pool of `workers` forked processes (they inherit the loaded modules and `initargs` unpickled)."""
    import multiprocessing  # imported here: multiprocessing costs a warm pack's import ~10 ms
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("fork"), initializer=initializer, initargs=initargs
    )
