"""SSH links to remote toolboxes, over asyncssh.

A remote toolbox is a Docker engine behind SSH. ``SshLink`` keeps one authenticated
connection to it alive (keepalives, reconnect with backoff) and opens channels on it;
``console.remote.forward`` builds on those a local unix socket piped to the remote engine
socket — so the runtime's Docker SDK and raw attach streams use the remote engine exactly
as they use the local one. This module knows nothing of that forwarder.

Host keys are pinned: trust on first use (the caller shows and stores the presented
key), then a different key refuses the connection and is never retried. Nothing here
reads ``~/.ssh`` (no known_hosts, config or agent): a toolbox's identity is its own key
from the vault, and its trust is its own pin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
from collections.abc import Callable
from typing import Any

import asyncssh

from console.remote.sshbase import (  # noqa: F401 - re-exported: callers import these from here
    CommandResult,
    HostKeyChanged,
    LinkStatus,
    SshAuthFailed,
    SshError,
    SshLinkDown,
    SshTarget,
    SshUnreachable,
    import_client_key,
    import_pin,
    public_key_line,
)
from console.remote.sshkeys import fingerprint

log = logging.getLogger(__name__)

DOCKER_SOCKET = "/var/run/docker.sock"

# Offered in this order so a host with several keys presents the same (strongest) one
# every time; SHA-1 ``ssh-rsa`` is left out, as current OpenSSH does.
_HOST_KEY_ALGS = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
]



def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name ({exc.strerror})"
    if isinstance(exc, OSError) and exc.errno and exc.errno > 0:
        return os.strerror(exc.errno).lower()  # asyncio's own text only repeats the address
    text = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).splitlines()[0][:200]


class _Client(asyncssh.SSHClient):
    """Checks the presented host key against the pin (or records it, on first use)."""

    def __init__(self, pin: asyncssh.SSHKey | None) -> None:
        self.pin = pin
        self.presented: asyncssh.SSHKey | None = None
        self.rejected = False
        self.lost: Exception | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.presented = key
        self.rejected = self.pin is not None and key.public_data != self.pin.public_data
        return not self.rejected

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc


# -- the link ----------------------------------------------------------------------------

StatusHandler = Callable[["LinkStatus"], None]


class SshLink:
    """One persistent SSH connection to a target: pinned, kept alive, reconnected.

    ``start`` makes the first connection and raises if it fails. After that the link
    reconnects by itself when the connection drops, with exponential backoff; operations
    issued meanwhile wait (bounded by ``wait_timeout``) for it to come back. A changed host
    key stops it for good (``REFUSED``); a rejected client key stops it too (``DOWN``),
    since retrying would only hammer the server's auth log.
    """

    def __init__(
        self,
        target: SshTarget,
        private_key: str,
        pinned_key: str | None = None,
        *,
        keepalive_interval: float = 15.0,
        keepalive_count_max: int = 3,
        connect_timeout: float = 15.0,
        wait_timeout: float = 15.0,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
    ) -> None:
        self.target = target
        self._key = import_client_key(private_key)
        self._pin = import_pin(pinned_key) if pinned_key else None
        self.keepalive_interval = keepalive_interval
        self.keepalive_count_max = keepalive_count_max
        self.connect_timeout = connect_timeout
        self.wait_timeout = wait_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.host_key: str | None = public_key_line(self._pin) if self._pin else None
        """The server's host key line (presented on first use, or the pin)."""
        self.last_error = ""
        self.reconnects = 0
        self._status = LinkStatus.CONNECTING
        self._handlers: list[StatusHandler] = []
        self._conn: asyncssh.SSHClientConnection | None = None
        self._fatal: SshError | None = None
        self._changed: asyncio.Event | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._sftp_lock: asyncio.Lock | None = None
        self._closing = False

    def __repr__(self) -> str:
        return f"SshLink({self.target}, {self._status.value})"

    @property
    def status(self) -> LinkStatus:
        return self._status

    @property
    def fingerprint(self) -> str | None:
        return fingerprint(self.host_key) if self.host_key else None

    def on_status(self, handler: StatusHandler) -> Callable[[], None]:
        """Call ``handler(status)`` on every change (on the link's loop); returns an unsubscribe."""
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler) if handler in self._handlers else None

    def _set_status(self, status: LinkStatus, error: str | None = None) -> None:
        if error is not None:
            self.last_error = error
        if status is self._status and error is None:
            return
        self._status = status
        log.info("ssh link %s: %s%s", self.target, status.value, f" ({self.last_error})" if error else "")
        if self._changed is not None:
            self._changed.set()
        self._changed = asyncio.Event()
        for handler in tuple(self._handlers):
            try:
                handler(status)
            except Exception:  # one broken observer must not stop the link
                log.exception("ssh link status handler failed")

    # -- connecting ----------------------------------------------------------------------

    async def _connect_once(self) -> asyncssh.SSHClientConnection:
        client = _Client(self._pin)
        preferred = [alg.decode() for alg in self._pin.sig_algorithms] if self._pin else []
        algs = preferred + [alg for alg in _HOST_KEY_ALGS if alg not in preferred]
        where = str(self.target)
        try:
            async with asyncio.timeout(self.connect_timeout + 1):
                conn, _ = await asyncssh.create_connection(
                    lambda: client,
                    self.target.host,
                    self.target.port,
                    username=self.target.user,
                    client_keys=[self._key],
                    # Empty trust lists (not None): every host key goes through _Client.
                    known_hosts=([], [], []),
                    server_host_key_algs=algs,
                    config=[],
                    agent_path=None,
                    password=None,
                    kbdint_auth=False,
                    gss_auth=False,
                    host_based_auth=False,
                    preferred_auth="publickey",
                    x509_trusted_certs=None,
                    keepalive_interval=self.keepalive_interval,
                    keepalive_count_max=self.keepalive_count_max,
                    connect_timeout=self.connect_timeout,
                    login_timeout=self.connect_timeout,
                )
        except asyncssh.PermissionDenied:
            raise SshAuthFailed(
                f"{where} refused the toolbox's SSH key; add its public key to ~{self.target.user}/.ssh/authorized_keys"
            ) from None
        except asyncssh.Error as exc:
            if client.rejected and self._pin is not None and client.presented is not None:
                raise HostKeyChanged(
                    self.target, public_key_line(self._pin), public_key_line(client.presented)
                ) from None
            raise SshUnreachable(f"SSH handshake with {where} failed: {_reason(exc)}") from None
        except TimeoutError:
            raise SshUnreachable(
                f"SSH to {where} timed out after {self.connect_timeout:g} s; check the address and firewall"
            ) from None
        except OSError as exc:
            raise SshUnreachable(
                f"cannot reach SSH at {where}: {_reason(exc)}; check the address and that sshd runs"
            ) from None
        if client.presented is not None and self._pin is None:
            # Trust on first use: from now on reconnects must meet the same key.
            self._pin = client.presented
            self.host_key = public_key_line(client.presented)
        return conn

    async def start(self) -> None:
        """Connect for the first time; raise ``SshError`` (status down or refused) on failure."""
        if self._supervisor is not None and not self._supervisor.done():
            return  # already up or reconnecting by itself
        if self._changed is None:
            self._changed = asyncio.Event()
            self._sftp_lock = asyncio.Lock()
        self._closing = False
        self._set_status(LinkStatus.CONNECTING)
        try:
            self._conn = await self._connect_once()
        except HostKeyChanged as exc:
            self._fail(LinkStatus.REFUSED, exc)
            raise
        except SshError as exc:
            self._fail(LinkStatus.DOWN, exc)
            raise
        self._fatal = None
        self._set_status(LinkStatus.UP, "")
        self._supervisor = asyncio.create_task(self._supervise(), name=f"ssh-link:{self.target}")

    def _fail(self, status: LinkStatus, exc: SshError) -> None:
        self._fatal = exc
        self._set_status(status, str(exc))

    async def _supervise(self) -> None:
        while not self._closing:
            conn = self._conn
            assert conn is not None
            await conn.wait_closed()
            if self._closing:
                return
            owner = conn.get_owner()
            lost = owner.lost if isinstance(owner, _Client) else None
            self._conn, self._sftp = None, None
            self._set_status(
                LinkStatus.RECONNECTING,
                f"lost the SSH link to {self.target}: {_reason(lost) if lost else 'closed by the server'}",
            )
            if not await self._reconnect():
                return

    async def _reconnect(self) -> bool:
        delay = self.backoff_initial
        while not self._closing:
            try:
                conn = await self._connect_once()
            except HostKeyChanged as exc:
                self._fail(LinkStatus.REFUSED, exc)
                return False
            except SshAuthFailed as exc:
                self._fail(LinkStatus.DOWN, exc)
                return False
            except SshError as exc:
                self.last_error = str(exc)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.backoff_max)
                continue
            if self._closing:
                conn.close()
                return False
            self._conn = conn
            self.reconnects += 1
            self._set_status(LinkStatus.UP, "")
            return True
        return False

    async def connection(self, timeout: float | None = None) -> asyncssh.SSHClientConnection:
        """The current connection, waiting (bounded) while the link reconnects."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.wait_timeout if timeout is None else timeout)
        while True:
            conn = self._conn
            if self._status is LinkStatus.UP and conn is not None and not conn.is_closed():
                return conn
            if self._status in (LinkStatus.DOWN, LinkStatus.REFUSED):
                if self._fatal is not None:
                    raise self._fatal.with_traceback(None)
                raise SshLinkDown(f"the SSH link to {self.target} is closed")
            changed = self._changed
            remaining = deadline - loop.time()
            if changed is None or remaining <= 0:
                raise SshLinkDown(
                    f"the SSH link to {self.target} is {self._status.value} ({self.last_error or 'no answer'}); "
                    f"check the host is up, the link retries by itself"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, 0.5))

    async def close(self) -> None:
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        conn, self._conn, self._sftp = self._conn, None, None
        if conn is not None:
            conn.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 2)
        if self._status is not LinkStatus.REFUSED:
            self._set_status(LinkStatus.DOWN, "closed")

    # -- operations ----------------------------------------------------------------------

    def _lost(self, what: str, exc: BaseException) -> SshLinkDown:
        return SshLinkDown(f"lost the SSH link to {self.target} while {what}: {_reason(exc)}; try again")

    async def run(self, command: str, input: str | bytes | None = None, timeout: float | None = 60.0) -> CommandResult:
        """Run a shell command on the host. A non-zero exit is a result, not an error."""
        conn = await self.connection()
        data = input.encode() if isinstance(input, str) else input
        try:
            result = await conn.run(command, input=data, check=False, timeout=timeout, encoding=None)
        except asyncssh.TimeoutError:
            raise SshError(f"a command on {self.target} did not finish within {timeout:g} s") from None
        except asyncssh.ChannelOpenError as exc:
            raise SshError(f"{self.target} refused to run a command: {_reason(exc)}") from None
        except (asyncssh.Error, OSError, asyncio.IncompleteReadError) as exc:
            raise self._lost("running a command", exc) from None
        code = result.returncode if result.returncode is not None else -1

        def text(value: Any) -> str:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")

        return CommandResult(code, text(result.stdout), text(result.stderr))

    async def _sftp_client(self) -> asyncssh.SFTPClient:
        assert self._sftp_lock is not None, "start the link first"
        async with self._sftp_lock:
            conn = await self.connection()
            if self._sftp is None or getattr(self._sftp, "_tbx_conn", None) is not conn:
                try:
                    sftp = await conn.start_sftp_client()
                except asyncssh.ChannelOpenError as exc:
                    raise SshError(f"{self.target} refused SFTP: {_reason(exc)}; enable the sftp subsystem") from None
                except (asyncssh.Error, OSError) as exc:
                    raise self._lost("starting SFTP", exc) from None
                sftp._tbx_conn = conn  # type: ignore[attr-defined]  # which connection it rides on
                self._sftp = sftp
            return self._sftp

    async def put_file(self, remote_path: str, data: bytes, mode: int = 0o600, *, parents: bool = False) -> None:
        """Write a file atomically: a temporary file beside it, fsync, then rename over it."""
        sftp = await self._sftp_client()
        directory = remote_path.rsplit("/", 1)[0] if "/" in remote_path else "."
        temporary = f"{remote_path}.tbx-{secrets.token_hex(4)}.tmp"
        try:
            if parents and directory:
                await sftp.makedirs(directory, attrs=asyncssh.SFTPAttrs(permissions=0o700), exist_ok=True)
            async with sftp.open(temporary, "xb", attrs=asyncssh.SFTPAttrs(permissions=mode)) as remote:
                await remote.write(data)
                with contextlib.suppress(asyncssh.SFTPOpUnsupported):
                    await remote.fsync()
            # The create mode passed the server's umask; set it exactly.
            await sftp.chmod(temporary, mode)
            await sftp.posix_rename(temporary, remote_path)
        except asyncssh.SFTPNoSuchFile:
            raise SshError(f"cannot write {remote_path} on {self.target}: {directory} does not exist") from None
        except asyncssh.SFTPError as exc:
            with contextlib.suppress(asyncssh.Error, OSError):
                await sftp.remove(temporary)
            if isinstance(exc, asyncssh.SFTPConnectionLost | asyncssh.SFTPNoConnection):
                raise self._lost(f"writing {remote_path}", exc) from None
            raise SshError(f"cannot write {remote_path} on {self.target}: {_reason(exc)}") from None
        except (asyncssh.Error, OSError) as exc:
            raise self._lost(f"writing {remote_path}", exc) from None

    async def read_file(self, remote_path: str, offset: int = 0) -> bytes:
        """The file's bytes from ``offset`` to its current end; ``b""`` if it does not exist."""
        sftp = await self._sftp_client()
        try:
            async with sftp.open(remote_path, "rb") as remote:
                size = (await remote.stat()).size or 0
                # Past the end (a truncated or rotated file) is simply nothing new.
                data = await remote.read(size - offset, offset) if size > offset else b""
        except asyncssh.SFTPNoSuchFile:
            return b""
        except (asyncssh.SFTPConnectionLost, asyncssh.SFTPNoConnection) as exc:
            raise self._lost(f"reading {remote_path}", exc) from None
        except asyncssh.SFTPError as exc:
            raise SshError(f"cannot read {remote_path} on {self.target}: {_reason(exc)}") from None
        except (asyncssh.Error, OSError) as exc:
            raise self._lost(f"reading {remote_path}", exc) from None
        return data if isinstance(data, bytes) else bytes(data)

    async def open_unix(self, remote_path: str) -> tuple[asyncssh.SSHReader[bytes], asyncssh.SSHWriter[bytes]]:
        """A stream to a unix socket on the host, on the current connection."""
        conn = await self.connection()
        try:
            return await conn.open_unix_connection(remote_path)
        except asyncssh.ChannelOpenError as exc:
            raise SshError(f"{self.target} cannot open {remote_path}: {_reason(exc)}") from None
        except (asyncssh.Error, OSError) as exc:
            raise self._lost(f"opening {remote_path}", exc) from None

    async def open_unix_channel(
        self, session_factory: Callable[[], asyncssh.SSHUNIXSession[bytes]], remote_path: str
    ) -> asyncssh.SSHUNIXChannel[bytes]:
        """A channel to a unix socket on the host, on the current connection, driven by the
        session ``session_factory`` makes (callbacks, for a forwarder's flow control)."""
        conn = await self.connection()
        try:
            chan, _session = await conn.create_unix_connection(session_factory, remote_path)
        except asyncssh.ChannelOpenError as exc:
            raise SshError(f"{self.target} cannot open {remote_path}: {_reason(exc)}") from None
        except (asyncssh.Error, OSError) as exc:
            raise self._lost(f"opening {remote_path}", exc) from None
        return chan
