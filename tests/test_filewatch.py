"""The vault watch: a file replaced by rename or written in place wakes it, other files of
its folder do not, and without inotify it polls — on asyncio's loop and on uvloop."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from console.gateway import filewatch
from console.gateway.filewatch import IN_IGNORED, IN_MOVED_TO, IN_Q_OVERFLOW, FileWatch, scan_events

LINUX = sys.platform.startswith("linux")
inotify = pytest.mark.skipif(not LINUX, reason="inotify is Linux only")
Runner = Callable[[Coroutine[Any, Any, None]], None]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Runner:
    """Runs a test's coroutine on a fresh loop of each kind (the CLI serves on uvloop)."""
    if request.param == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        new_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    else:
        new_loop = asyncio.new_event_loop

    def run_on_loop(main: Coroutine[Any, Any, None]) -> None:
        loop = new_loop()
        try:
            loop.run_until_complete(main)
        finally:
            loop.close()

    return run_on_loop


def replace(path: Path, text: str) -> None:
    """What the vault's writer does: a temporary file renamed over the file."""
    tmp = path.with_name(path.name + ".tmp-1")
    tmp.write_text(text)
    os.replace(tmp, path)


def event(mask: int, name: bytes = b"") -> bytes:
    padded = name + b"\0" * (16 - len(name) % 16) if name else b""
    return filewatch._EVENT.pack(1, mask, 0, len(padded)) + padded


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    path = tmp_path / "vault.tbx"
    path.write_text("one")
    return path


@inotify
def test_a_rename_over_the_file_wakes_the_watch_at_once(vault: Path, run: Runner) -> None:
    async def main() -> None:
        with FileWatch(vault, poll_seconds=60) as watch:
            assert watch.events and watch.polling_because is None
            waiting = asyncio.ensure_future(watch.wait(10))
            await asyncio.sleep(0.05)
            started = time.monotonic()
            await asyncio.to_thread(replace, vault, "two")
            assert await waiting is True
            assert time.monotonic() - started < 0.5
            assert await watch.wait(0.1) is False  # the change was reported once

    run(main())


@inotify
def test_a_write_in_place_wakes_the_watch(vault: Path, run: Runner) -> None:
    async def main() -> None:
        with FileWatch(vault, poll_seconds=60) as watch:
            vault.write_text("written in place")  # open, write, close: IN_CLOSE_WRITE
            assert await watch.wait(2) is True

    run(main())


@inotify
def test_a_created_file_wakes_the_watch(tmp_path: Path, run: Runner) -> None:
    async def main() -> None:
        path = tmp_path / "vault.tbx"
        with FileWatch(path, poll_seconds=60) as watch:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)  # created, not yet closed
            try:
                assert await watch.wait(2) is True
            finally:
                os.close(fd)

    run(main())


@inotify
def test_other_files_of_the_folder_are_ignored(vault: Path, run: Runner) -> None:
    async def main() -> None:
        with FileWatch(vault, poll_seconds=60) as watch:
            replace(vault.with_name("vault.tbx.bak"), "backup")
            (vault.parent / "vault.tbx.lock").write_text("")
            (vault.parent / "vault.tbx.tmp-9").write_text("temporary")
            (vault.parent / "audit.jsonl").write_text("{}\n")
            vault.read_text()  # reading is no change either
            assert await watch.wait(0.3) is False
            replace(vault, "two")
            assert await watch.wait(2) is True

    run(main())


@inotify
def test_a_burst_of_changes_is_one_wake(vault: Path, run: Runner) -> None:
    async def main() -> None:
        with FileWatch(vault, poll_seconds=60) as watch:
            for n in range(50):
                replace(vault, f"version {n}")
            assert await watch.wait(2) is True
            assert await watch.wait(0.2) is False

    run(main())


def test_without_inotify_the_watch_polls(vault: Path, run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_inotify() -> None:
        raise AttributeError("undefined symbol: inotify_init1")

    monkeypatch.setattr(filewatch, "_libc", no_inotify)

    async def main() -> None:
        with FileWatch(vault, poll_seconds=0.05) as watch:
            assert not watch.events and "inotify_init1" in (watch.polling_because or "")
            assert await watch.wait(0.2) is False
            waiting = asyncio.ensure_future(watch.wait(5))
            await asyncio.sleep(0.02)
            replace(vault, "two")
            started = time.monotonic()
            assert await waiting is True
            assert time.monotonic() - started < 0.5
            (vault.parent / "other").write_text("x")
            assert await watch.wait(0.2) is False

    run(main())


def test_inotify_limits_reached_mean_polling(vault: Path, run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    def limits(folder: Path) -> int:
        raise OSError(24, "inotify_init1: Too many open files")

    monkeypatch.setattr(filewatch, "_open_inotify", limits)

    async def main() -> None:
        with FileWatch(vault, poll_seconds=0.05) as watch:
            assert not watch.events and "Too many open files" in (watch.polling_because or "")
            replace(vault, "two")
            assert await watch.wait(1) is True

    run(main())


def test_polling_notices_the_file_appearing_and_going(tmp_path: Path, run: Runner) -> None:
    path = tmp_path / "vault.tbx"

    async def main() -> None:
        with FileWatch(path, poll_seconds=0.02, events=False) as watch:
            assert watch.polling_because == "asked to poll"
            path.write_text("one")
            assert await watch.wait(1) is True
            path.unlink()
            assert await watch.wait(1) is True
            assert await watch.wait(0.1) is False

    run(main())


def test_the_event_records_are_read_by_name() -> None:
    name = b"vault.tbx"
    assert scan_events(event(IN_MOVED_TO, name), name) == (True, False)
    assert scan_events(event(IN_MOVED_TO, b"vault.tbx.bak") + event(IN_MOVED_TO, b"vault.tb"), name) == (False, False)
    assert scan_events(event(IN_MOVED_TO, b"other") + event(IN_MOVED_TO, name), name) == (True, False)
    assert scan_events(event(IN_Q_OVERFLOW), name) == (True, False)  # events were dropped: look
    assert scan_events(event(IN_IGNORED), name) == (True, True)  # the watch is gone


@inotify
def test_a_removed_folder_turns_the_watch_into_polling(tmp_path: Path, run: Runner) -> None:
    folder = tmp_path / "home"
    folder.mkdir()
    path = folder / "vault.tbx"
    path.write_text("one")

    async def main() -> None:
        with FileWatch(path, poll_seconds=0.02) as watch:
            path.unlink()
            folder.rmdir()
            assert await watch.wait(2) is True
            assert not watch.events and watch.polling_because
            folder.mkdir()
            path.write_text("back")
            assert await watch.wait(1) is True

    run(main())


@inotify
def test_closing_releases_the_descriptor(vault: Path, run: Runner) -> None:
    async def main() -> None:
        before = len(os.listdir("/proc/self/fd"))
        watch = FileWatch(vault, poll_seconds=60)
        assert len(os.listdir("/proc/self/fd")) == before + 1
        watch.close()
        watch.close()
        assert len(os.listdir("/proc/self/fd")) == before

    run(main())
