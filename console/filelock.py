"""An exclusive lock across processes: ``flock`` on a lock file, waited for with a limit.

The holder writes its pid into the file, so whoever waits too long can be told which
process is in the way.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def held(
    lock_path: Path,
    timeout: float,
    too_long: Callable[[str], Exception],
    waiting: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Hold the lock; after ``timeout`` seconds raise ``too_long(holder_pid)``.

    ``waiting`` is called once if the lock is not free at the first try.
    """
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.002
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if waiting is not None and not told:
                waiting()
                told = True
            if time.monotonic() >= deadline:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                raise too_long(holder)
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
