"""A local unix socket whose every connection is piped to a remote unix socket (the
Docker engine's) over the current connection of an ``SshLink``.

It uses the link only through its public methods (``open_unix_channel``); the link
does not know this module, so the dependency runs one way: forward -> ssh.

The listener is ours, not the SSH server's (no ``streamlocal`` listener at the far end),
so its path survives reconnects: connections accepted after a dropped link simply go
over the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
from pathlib import Path

import asyncssh

from console.errors import UsageError
from console.remote.ssh import DOCKER_SOCKET, SshError, SshLink

log = logging.getLogger(__name__)

MAX_UNIX_PATH = 107
"""The longest local socket path in bytes: sun_path is 108 bytes with its terminating NUL."""


# -- unix socket forwarding --------------------------------------------------------------


def prepare_socket_dir(directory: Path) -> None:
    """Create ``directory`` private to us, or check an existing one is ours and make it private."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.stat()
    if info.st_uid != os.getuid():
        raise UsageError(f"socket directory {directory} belongs to another user; choose a directory of your own")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(directory, 0o700)


def remove_stale_sockets(directory: Path) -> int:
    """Delete sockets left by tunnels of processes that died (nobody accepts on them)."""
    removed = 0
    for path in directory.glob("*.sock"):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)  # a live listener that stopped accepting must not hold us up
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
        except OSError:
            pass
        finally:
            probe.close()
    return removed


class _RemoteSide(asyncssh.SSHUNIXSession[bytes]):
    def __init__(self, pipe: _Pipe) -> None:
        self.pipe = pipe

    def data_received(self, data: bytes, datatype: int | None) -> None:
        self.pipe.to_local(data)

    def eof_received(self) -> bool:
        return self.pipe.remote_eof()

    def pause_writing(self) -> None:
        self.pipe.pause_local()

    def resume_writing(self) -> None:
        self.pipe.resume_local()

    def connection_lost(self, exc: Exception | None) -> None:
        self.pipe.close()


class _Pipe(asyncio.Protocol):
    """One accepted local connection and its SSH channel, piped both ways.

    Flow control follows each side's buffers: a full SSH window pauses reading the local
    socket and a full local socket pauses the channel. Half-closes pass through, which
    Docker's hijacked attach connections rely on (stdin closes, stdout keeps flowing).
    """

    def __init__(self, forward: UnixForward) -> None:
        self.forward = forward
        self.transport: asyncio.Transport | None = None
        self.chan: asyncssh.SSHUNIXChannel[bytes] | None = None
        self.pending = bytearray()
        self.local_eof = False
        self.remote_eof_seen = False
        self.closed = False
        self._opening: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.forward.pipes.add(self)
        # Held so the task is not garbage-collected mid-flight.
        self._opening = asyncio.get_running_loop().create_task(self._open())

    async def _open(self) -> None:
        try:
            chan = await self.forward.link.open_unix_channel(lambda: _RemoteSide(self), self.forward.remote_path)
        except SshError as exc:
            log.warning("ssh forward %s: %s", self.forward.local_path.name, exc)
            self.close()
            return
        if self.closed:
            chan.close()
            return
        self.chan = chan
        if self.pending:
            chan.write(bytes(self.pending))
            self.pending.clear()
            assert self.transport is not None
            self.transport.resume_reading()
        if self.local_eof:
            chan.write_eof()

    # local socket → SSH channel
    def data_received(self, data: bytes) -> None:
        if self.chan is not None:
            self.chan.write(data)
            return
        self.pending += data
        if len(self.pending) > 1 << 20 and self.transport is not None:
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.local_eof = True
        if self.chan is not None:
            self.chan.write_eof()
        # Keep the socket open for the engine's answer unless that side is done too.
        return not self.remote_eof_seen

    def pause_writing(self) -> None:
        if self.chan is not None:
            self.chan.pause_reading()

    def resume_writing(self) -> None:
        if self.chan is not None:
            self.chan.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    # SSH channel → local socket
    def to_local(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def remote_eof(self) -> bool:
        self.remote_eof_seen = True
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(OSError, RuntimeError):
                self.transport.write_eof()
        if self.local_eof:
            self.close()
            return False
        return True

    def pause_local(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_local(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.forward.pipes.discard(self)
        if self.chan is not None:
            self.chan.close()
        if self.transport is not None:
            self.transport.close()


class UnixForward:
    """A local unix socket server standing in for a unix socket on the remote host.

    The server is ours, not asyncssh's, so it outlives SSH connections: after a reconnect
    new local connections ride the new SSH connection, and the path never changes.
    Connections open while the link dropped are closed; their clients reconnect.
    """

    def __init__(self, link: SshLink, local_path: Path, remote_path: str) -> None:
        self.link = link
        self.local_path = local_path
        self.remote_path = remote_path
        self.pipes: set[_Pipe] = set()
        self._server: asyncio.AbstractServer | None = None

    def __repr__(self) -> str:
        return f"UnixForward({self.local_path} -> {self.link.target}:{self.remote_path})"

    @property
    def endpoint(self) -> str:
        return f"unix://{self.local_path}"

    async def start(self) -> None:
        if len(str(self.local_path).encode()) > MAX_UNIX_PATH:
            raise UsageError(
                f"socket path {self.local_path} is too long for a unix socket; use a shorter socket directory"
            )
        prepare_socket_dir(self.local_path.parent)
        with contextlib.suppress(FileNotFoundError):
            self.local_path.unlink()
        self._server = await asyncio.get_running_loop().create_unix_server(lambda: _Pipe(self), str(self.local_path))
        # The 0700 directory already keeps others out; 0600 keeps the socket itself honest.
        os.chmod(self.local_path, 0o600)

    @classmethod
    async def serve(cls, link: SshLink, local_path: Path, remote_path: str = DOCKER_SOCKET) -> UnixForward:
        """Serve ``local_path`` (0600, in a 0700 directory) as a stand-in for ``remote_path``."""
        forward = cls(link, Path(local_path), remote_path)
        await forward.start()
        return forward

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for pipe in tuple(self.pipes):
                pipe.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.local_path.unlink()
