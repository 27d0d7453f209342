"""Crash-safe file replacement and a cross-process lock.

A write never leaves a half-written vault: the new version goes to a temporary file
that is fsynced, the current version is hard-linked to ``.bak`` (atomic, no copy), the
temporary file is renamed over the vault and the directory is fsynced. A process killed
at any point leaves either the old or the new version in place, plus at most a stray
temporary file that the next writer removes.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path

from console.errors import VaultBusy
from console.filelock import held

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


def exclusive_lock(lock_path: Path, timeout: float, what: str) -> AbstractContextManager[None]:
    """Hold the vault's cross-process lock, waiting up to ``timeout`` seconds."""

    def too_long(holder: str) -> VaultBusy:
        return VaultBusy(
            f"{what} is locked by another tbx process (pid {holder}) for over "
            f"{timeout:g}s; wait for it to finish or stop it"
        )

    return held(lock_path, timeout, too_long)
