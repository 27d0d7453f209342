"""Wake when one file is replaced or written: Linux inotify through ctypes, else polling.

The vault is always replaced by rename (a new inode), so the watch is on its folder, for
``IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE``, filtered on the file's name. The inotify
descriptor joins the event loop with ``loop.add_reader`` (asyncio's loops and uvloop
alike). Where inotify is missing (not Linux, no such symbol in libc) or refused (the
per-user instance or watch limits reached), the watch polls the file's
(inode, size, mtime) instead, every ``poll_seconds``; ``events`` says which it does.
A dropped queue (``IN_Q_OVERFLOW``) counts as a change; a removed watch (the folder was
deleted or unmounted) counts as one and turns the watch into polling.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import os
import struct
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
WATCHED = IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name
_READ_SIZE = 64 * 1024

Signature = tuple[int, int, int] | None
"""(inode, size, mtime in ns) of the file, None while it does not exist."""


def signature(path: Path) -> Signature:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _libc() -> Any:
    """libc's inotify functions; raises OSError or AttributeError where there are none."""
    if not sys.platform.startswith("linux"):
        raise OSError(errno.ENOSYS, "inotify is Linux only")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.inotify_init1.argtypes = [ctypes.c_int]
    libc.inotify_init1.restype = ctypes.c_int
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    libc.inotify_add_watch.restype = ctypes.c_int
    return libc


def _open_inotify(folder: Path) -> int:
    """An inotify descriptor (non-blocking) watching ``folder``; raises OSError or AttributeError."""
    libc = _libc()
    fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"inotify_init1: {os.strerror(code)}")
    if libc.inotify_add_watch(fd, os.fsencode(folder), WATCHED | IN_ONLYDIR) < 0:
        code = ctypes.get_errno()
        os.close(fd)
        raise OSError(code, f"inotify_add_watch {folder}: {os.strerror(code)}")
    return fd


def scan_events(buffer: bytes, name: bytes) -> tuple[bool, bool]:
    """Whether inotify events in ``buffer`` concern ``name`` (or may have: a dropped queue),
    and whether the watch is gone."""
    changed = gone = False
    offset = 0
    while offset + _EVENT.size <= len(buffer):
        _wd, mask, _cookie, length = _EVENT.unpack_from(buffer, offset)
        start = offset + _EVENT.size
        offset = start + length
        if mask & (IN_Q_OVERFLOW | IN_IGNORED):
            changed = True
            gone = gone or bool(mask & IN_IGNORED)
        elif mask & WATCHED and buffer[start:offset].rstrip(b"\0") == name:
            changed = True
    return changed, gone


class FileWatch:
    """Says when one file was replaced or written. Create it on the loop that waits on it;
    ``close`` it (or use it as a context manager) to release the descriptor."""

    def __init__(self, path: Path, poll_seconds: float, *, events: bool = True) -> None:
        """``poll_seconds``: how often to look at the file when polling. ``events=False``
        polls without trying inotify."""
        self.path = path
        self.poll_seconds = poll_seconds
        self.polling_because: str | None = "asked to poll" if not events else None
        """Why the watch polls instead of receiving file events (None while it receives them)."""
        self._name = os.fsencode(path.name)
        self._last = signature(path)
        self._changed = asyncio.Event()
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        if events:
            self._start_events()

    @property
    def events(self) -> bool:
        """Whether changes arrive as file events (else they are found by polling)."""
        return self._fd is not None

    def _start_events(self) -> None:
        try:
            fd = _open_inotify(self.path.parent)
        except (OSError, AttributeError) as exc:
            self._poll_instead(str(exc))
            return
        try:
            loop = asyncio.get_running_loop()
            loop.add_reader(fd, self._readable)
        except (RuntimeError, NotImplementedError) as exc:  # no running loop; a loop without readers
            os.close(fd)
            self._poll_instead(f"no event loop to read file events on ({exc})")
            return
        self._fd, self._loop = fd, loop

    def _poll_instead(self, why: str) -> None:
        self.polling_because = why
        log.info("watching %s by polling every %gs: %s", self.path, self.poll_seconds, why)

    def _readable(self) -> None:
        assert self._fd is not None
        changed = gone = False
        while True:
            try:
                buffer = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                break
            except OSError as exc:
                changed, gone = True, True
                log.warning("reading file events for %s failed: %s", self.path, exc)
                break
            if not buffer:
                break
            now_changed, now_gone = scan_events(buffer, self._name)
            changed, gone = changed or now_changed, gone or now_gone
        if gone:
            self._stop_events()
            self._poll_instead("its folder's watch was removed")
        if changed:
            self._changed.set()

    async def wait(self, timeout: float) -> bool:
        """Wait until the file changes or ``timeout`` seconds pass; True if it changed since
        the last wait returned (changes in between are reported once, together)."""
        if not self.events:
            return await self._poll(timeout)
        if not self._changed.is_set():
            try:
                async with asyncio.timeout(timeout):
                    await self._changed.wait()
            except TimeoutError:
                return False
        self._changed.clear()
        self._last = signature(self.path)
        return True

    async def _poll(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._changed.is_set():  # an event read before the watch turned to polling
                self._changed.clear()
                self._last = signature(self.path)
                return True
            now = signature(self.path)
            if now != self._last:
                self._last = now
                return True
            left = deadline - loop.time()
            if left <= 0:
                return False
            await asyncio.sleep(min(self.poll_seconds, left))

    def _stop_events(self) -> None:
        if self._fd is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd, self._loop = None, None

    def close(self) -> None:
        self._stop_events()

    def __enter__(self) -> FileWatch:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
