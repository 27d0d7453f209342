"""A remote Docker engine as a local socket, for synchronous code (CLI, services).

``Tunnel.open`` connects an ``SshLink`` and forwards the host's engine socket to a
private local socket; ``endpoint`` is what ``console.runtime.containers.Engine`` and
``enginehttp.Endpoint`` take, so the runtime never knows the engine is remote. The link
and the forwarder run on their own event loop in a daemon thread, which keeps them alive
between the caller's blocking calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import secrets
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from console.remote.forward import UnixForward, remove_stale_sockets
from console.remote.ssh import (
    DOCKER_SOCKET,
    CommandResult,
    LinkStatus,
    SshError,
    SshLink,
    SshTarget,
    StatusHandler,
)

T = TypeVar("T")


class Tunnel:
    """An open SSH link plus the forwarded engine socket. Use as a context manager."""

    def __init__(
        self, link: SshLink, forward: UnixForward, loop: asyncio.AbstractEventLoop, thread: threading.Thread
    ) -> None:
        self.link = link
        self.forward = forward
        self._loop = loop
        self._thread = thread
        self._closed = False
        self._also: dict[str, UnixForward] = {}
        """Other sockets of the host forwarded over the same link, by their remote path."""

    def __repr__(self) -> str:
        return f"Tunnel({self.link.target}, {self.status.value}, {self.endpoint})"

    @classmethod
    def open(
        cls,
        target: SshTarget,
        private_key: str,
        pinned_key: str | None,
        *,
        socket_dir: Path,
        remote_socket: str = DOCKER_SOCKET,
        timeout: float = 15.0,
        keepalive_interval: float = 15.0,
        keepalive_count_max: int = 3,
    ) -> Tunnel:
        """Connect (raising ``SshError`` / ``HostKeyChanged`` on failure) and start forwarding."""
        link = SshLink(
            target,
            private_key,
            pinned_key,
            keepalive_interval=keepalive_interval,
            keepalive_count_max=keepalive_count_max,
            connect_timeout=timeout,
            wait_timeout=timeout,
        )
        # Short and unique: sun_path is 108 bytes, and a CLI and a gateway may tunnel to the same host.
        local_path = Path(socket_dir) / f"{target.host}-{target.port}-{secrets.token_hex(3)}.sock"
        if local_path.parent.is_dir():
            remove_stale_sockets(local_path.parent)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=_run_loop, args=(loop,), name=f"ssh-tunnel:{target}", daemon=True)
        thread.start()

        async def setup() -> UnixForward:
            await link.start()
            try:
                return await UnixForward.serve(link, local_path, remote_socket)
            except BaseException:
                await link.close()
                raise

        try:
            forward = asyncio.run_coroutine_threadsafe(setup(), loop).result(timeout + 5)
        except BaseException as exc:
            _stop_loop(loop, thread)
            if isinstance(exc, concurrent.futures.TimeoutError):
                raise SshError(
                    f"opening the SSH tunnel to {target} took over {timeout + 5:g} s; is the host up?"
                ) from None
            raise
        return cls(link, forward, loop, thread)

    @property
    def endpoint(self) -> str:
        """``unix:///…/<host>-<port>-<id>.sock``: the remote engine, as a local socket."""
        return self.forward.endpoint

    @property
    def host_key(self) -> str:
        """The host key line the server presented (store it as the pin on first use)."""
        assert self.link.host_key is not None
        return self.link.host_key

    @property
    def fingerprint(self) -> str:
        return self.link.fingerprint or ""

    @property
    def status(self) -> LinkStatus:
        return self.link.status

    @property
    def last_error(self) -> str:
        return self.link.last_error

    def on_status(self, handler: StatusHandler) -> Callable[[], None]:
        """``handler(status)`` runs on the tunnel's thread: hand off, do not block."""
        return self.link.on_status(handler)

    def call(self, coro_fn: Callable[..., Awaitable[T]], *args: Any, timeout: float | None = None, **kwargs: Any) -> T:
        """Run ``await coro_fn(*args, **kwargs)`` on the tunnel's loop and return its result."""
        if self._closed:
            raise SshError(f"the SSH tunnel to {self.link.target} is closed")
        if threading.current_thread() is self._thread:
            raise RuntimeError("Tunnel.call from the tunnel's own loop would deadlock; await the link directly")

        async def invoke() -> T:
            return await coro_fn(*args, **kwargs)

        future = asyncio.run_coroutine_threadsafe(invoke(), self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise SshError(f"an SSH operation on {self.link.target} did not finish within {timeout:g} s") from None

    def run(self, command: str, input: str | bytes | None = None, timeout: float = 60.0) -> CommandResult:
        return self.call(self.link.run, command, input, timeout, timeout=timeout + self.link.wait_timeout + 5)

    def put_file(self, remote_path: str, data: bytes, mode: int = 0o600, *, parents: bool = False) -> None:
        self.call(self.link.put_file, remote_path, data, mode, parents=parents, timeout=120.0)

    def read_file(self, remote_path: str, offset: int = 0) -> bytes:
        return self.call(self.link.read_file, remote_path, offset, timeout=120.0)

    def forward_also(self, remote_path: str) -> Path:
        """Another socket of the host (a gateway's owner's door) as a local one, over the
        same link, until the tunnel closes; the same local socket on every call."""
        found = self._also.get(remote_path)
        if found is None:
            local = self.forward.local_path.with_name(f"{self.forward.local_path.stem}-{len(self._also)}.sock")
            found = self._also[remote_path] = self.call(UnixForward.serve, self.link, local, remote_path,
                                                        timeout=10.0)
        return found.local_path

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        async def teardown() -> None:
            for also in self._also.values():
                await also.close()
            await self.forward.close()
            await self.link.close()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(teardown(), self._loop).result(10)
        _stop_loop(self._loop, self._thread)

    def __enter__(self) -> Tunnel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        # Host name lookups ran in the loop's default executor: end its thread too.
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def _stop_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    if not loop.is_closed():
        loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
