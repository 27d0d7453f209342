"""Crash-safe file replacement and a cross-process lock.

A write never leaves a half-written vault: the new version goes to a temporary file
that is fsynced, the current version is hard-linked to ``.bak`` (atomic, no copy), the
temporary file is renamed over the vault and the directory is fsynced. A process killed
at any point leaves either the old or the new version in place, plus at most a stray
temporary file that the next writer removes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from console.errors import VaultBusy

_TMP_MARK = ".tmp-"


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stray_temporaries(path: Path) -> None:
    """Remove temporaries left by a writer that died; call only while holding the lock."""
    for stray in path.parent.glob(path.name + _TMP_MARK + "*"):
        stray.unlink(missing_ok=True)


def replace_atomically(path: Path, data: bytes, backup: Path | None = None) -> None:
    tmp = path.with_name(f"{path.name}{_TMP_MARK}{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    if backup is not None and path.exists():
        link = backup.with_name(f"{backup.name}{_TMP_MARK}{os.getpid()}")
        link.unlink(missing_ok=True)
        os.link(path, link)
        os.replace(link, backup)
    os.replace(tmp, path)
    fsync_dir(path.parent)


@contextmanager
def exclusive_lock(lock_path: Path, timeout: float, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path``, waiting up to ``timeout`` seconds.

    The holder's pid is written into the file so a waiter can say who is in the way.
    """
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                    raise VaultBusy(
                        f"{what} is locked by another tbx process (pid {holder}) for over "
                        f"{timeout:g}s; wait for it to finish or stop it"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
