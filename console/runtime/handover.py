"""Secrets handed to a server over its attach stream, never put in its container's config.

A server with secrets runs under ``launch.sh`` (baked into every server image): the
container's Cmd names the variables it waits for, and its first stdin line, written
here on every start, carries their values. The launcher places them in the server's
environment (or a token file on the tmpfs) and execs the server on the same stdin.

Exactly one frame per start: a second one would reach the running server's stdin (and
perhaps its error log). So whoever hands over holds a lock for the container from
before it starts the container until the launcher has exec'd the server, and anyone
attaching to a container it did not start asks the engine (``top``) whether the
launcher is still waiting before writing anything.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from console.errors import TbxError
from console.filelock import held
from console.runtime.attach import StdioChannel, attached
from console.runtime.enginehttp import Endpoint, EngineError, container_path, get_json, inspect

LAUNCHER_DIR = "/opt/tbx-launch"
LAUNCHER = f"{LAUNCHER_DIR}/launch"
PROTOCOL = "tbx-handover/1"
PLACED = "tbx-launch: secrets placed"
LAUNCHER_TEXT = files("console.runtime").joinpath("launch.sh").read_bytes()


class HandoverError(TbxError):
    """The launcher did not take the secrets; the message quotes what it said."""


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


@dataclass(frozen=True)
class Secrets:
    """What one server is handed at start: env values and token files (path -> text)."""

    env: dict[str, str] = field(default_factory=dict, repr=False)
    files: dict[str, str] = field(default_factory=dict, repr=False)

    def __bool__(self) -> bool:
        return bool(self.env or self.files)

    def frame(self) -> bytes:
        items = [f"e:{name}:{_b64(value)}" for name, value in self.env.items()]
        items += [f"f:{_b64(path)}:{_b64(text)}" for path, text in self.files.items()]
        return " ".join([PROTOCOL, *items]).encode("ascii") + b"\n"


def launcher_command(names: list[str], command: list[str], wait: float) -> list[str]:
    """The container's Cmd for a server with secrets: names and the wait, no values."""
    return ["/bin/sh", LAUNCHER, ",".join(names), f"{wait:g}", "--", *command]


def uses_launcher(attrs: dict[str, Any]) -> bool:
    """Whether an inspected container runs its server under the launcher (perhaps under
    the egress wrapper, which execs it: ``egress_container``)."""
    args = attrs.get("Args") or []
    return attrs.get("Path") == "/bin/sh" and LAUNCHER in args[:6]


async def launcher_waiting(endpoint: Endpoint, container: str) -> bool:
    """The container's launcher is still waiting for its frame (a running container,
    started by the engine's restart policy or by someone else, that nobody fed yet)."""
    try:
        top = await get_json(endpoint, container_path(container, "top"), what="listing its processes")
    except EngineError:
        return False  # not running (any more): nobody reads a frame
    column = top.get("Titles", []).index("CMD") if "CMD" in top.get("Titles", []) else -1
    prefix = f"/bin/sh {LAUNCHER} "
    return any(str(row[column]).startswith(prefix) for row in top.get("Processes") or [])


@asynccontextmanager
async def handover_lock(lock_dir: Path, container: str, timeout: float) -> AsyncIterator[None]:
    """One handover at a time per container, across processes on this machine."""
    lock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def too_long(holder: str) -> Exception:
        return HandoverError(f"process {holder} has been handing secrets to container {container[:12]} "
                             f"for over {timeout:g}s; is it stuck?")

    lock = held(lock_dir / f"{container[:64]}.lock", timeout, too_long)
    taking = asyncio.ensure_future(asyncio.to_thread(lock.__enter__))
    try:
        await asyncio.shield(taking)
    except asyncio.CancelledError:
        # The thread still takes the lock: let it go then, or nobody could hand over again.
        taking.add_done_callback(lambda done: done.exception() or lock.__exit__(None, None, None))
        raise
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


async def hand_over(endpoint: Endpoint, container: str, secrets: Callable[[], Awaitable[Secrets]], *,
                    lock_dir: Path, timeout: float, start: Callable[[], Awaitable[None]] | None = None) -> bool:
    """Start the container (``start``, if given) and write the frame if its launcher waits
    for one; return whether it did. Meant as ``mcp_session``'s ``before_initialize``: the
    frame goes over an attach of its own, before the session's first line.

    ``secrets`` is asked for only when a frame is due (it may refresh a token). Who
    started the container under the lock knows its launcher is unfed; anyone else asks
    the engine whether it still waits."""
    async with handover_lock(lock_dir, container, timeout), attached(endpoint, container) as channel:
        if start is not None:
            attrs = await inspect(endpoint, container)
            if attrs is None or not uses_launcher(attrs):
                await start()
                return False
            values = await secrets()  # before the start: a vault that fails leaves it stopped
            await start()
        elif await launcher_waiting(endpoint, container):
            values = await secrets()
        else:
            return False
        await _send(channel, container, values, timeout)
        await _until_exec(endpoint, container, timeout)
        return True


async def _send(channel: StdioChannel, container: str, secrets: Secrets, timeout: float) -> None:
    placed = asyncio.Event()
    said: list[str] = []

    def heard(line: bytes) -> None:
        text = line.decode("utf-8", "replace")
        if text.startswith("tbx-launch: "):  # its words name variables, never values
            said.append(text)
            if text.startswith(PLACED):
                placed.set()

    forget = channel.on_stderr(heard)
    try:
        await channel.send(secrets.frame())
        waits = [asyncio.ensure_future(channel.closed.wait()), asyncio.ensure_future(placed.wait())]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if not placed.is_set():
            await asyncio.sleep(0.1)  # the launcher's last words, if it is dying
            raise HandoverError(f"the launcher of container {container[:12]} did not take the secrets within "
                                f"{timeout:g}s; it said: {'; '.join(said[-2:]) or 'nothing'}")
    finally:
        forget()


async def _until_exec(endpoint: Endpoint, container: str, timeout: float) -> None:
    # The launcher says "placed" just before it execs the server: the lock is let go only
    # once the engine no longer lists it, so the next holder never sees a fed launcher.
    deadline = time.monotonic() + timeout
    while await launcher_waiting(endpoint, container):
        if time.monotonic() > deadline:
            raise HandoverError(f"the launcher of container {container[:12]} did not exec its server")
        await asyncio.sleep(0.01)
