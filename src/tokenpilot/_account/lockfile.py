"""A lock file that SQLite writers queue on: an exclusive `flock`, waited for in the kernel, with a timeout.

SQLite's own busy handler sleeps up to 100 ms between tries, and polling a lock sleeps past the
moment it is freed; under eight writers on two cores either wastes most of the lock's time. Here
a free lock is taken with one non-blocking call; otherwise a daemon thread blocks in `flock`, which
the kernel wakes the moment the holder lets go, while the caller waits on an event with its
timeout. A caller that gave up has the lock released for it when it comes. (Libraries such as
`filelock` poll every 50 ms.) POSIX only: on Windows the store relies on SQLite's busy handler.
"""

from __future__ import annotations

import fcntl
import os
import queue
import threading


class _Request:
    __slots__ = ("abandoned", "granted", "lock")

    def __init__(self) -> None:
        self.granted = threading.Event()
        self.lock = threading.Lock()
        self.abandoned = False


class FileLock:
    """An exclusive lock on the open file `fd` (which it owns and closes), for one thread at a time."""

    def __init__(self, fd: int):
        self._fd = fd
        self._requests: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._waiter: threading.Thread | None = None
        self._waiter_pid = 0  # a forked child has the file but not the thread: it starts its own

    def try_acquire(self) -> bool:
        """Take the lock if it is free now; False when it is held elsewhere."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def acquire(self, timeout: float) -> bool:
        """Take the lock within `timeout` seconds; False when it stayed held elsewhere."""
        if self.try_acquire():
            return True
        if self._waiter is None or self._waiter_pid != os.getpid():
            self._requests = queue.SimpleQueue()
            self._waiter = threading.Thread(target=self._wait_loop, name="tokenpilot-lockfile", daemon=True)
            self._waiter_pid = os.getpid()
            self._waiter.start()
        request = _Request()
        self._requests.put(request)
        if request.granted.wait(timeout):
            return True
        with request.lock:
            request.abandoned = not request.granted.is_set()
            return not request.abandoned

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the file; if the waiter is inside `flock`, it closes the file once that returns."""
        if self._waiter is None:
            os.close(self._fd)
        else:
            self._requests.put(None)

    def _wait_loop(self) -> None:
        requests = self._requests
        while True:
            request = requests.get()
            if request is None:
                os.close(self._fd)
                return
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            with request.lock:
                if request.abandoned:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                else:
                    request.granted.set()
