"""One server's egress proxy: an HTTP/1.1 forward proxy on a Unix socket, allow-list first.

The server's container has no route and no resolver of its own; the forwarder inside it
hands every connection to this socket. Each connection carries one request: ``CONNECT
host:port`` (HTTPS and any TCP) or an absolute-form ``http://`` request. The target is
checked against the allow-list, resolved here, checked again as an address, connected,
and then bytes flow both ways untouched. The other end is a hostile server: every
buffer, wait and connection count is bounded, and nothing it sends decides a length.

Events name host, port and why; never a path, a query or a header value (secrets live
there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from console.egress.addresses import Resolver, is_private, system_resolver
from console.egress.allowlist import AllowList, EgressError, HostRule
from console.egress.names import authority, is_address
from console.egress.request import HeadTimeout, ProxyRequest, Refusal, read_request
from console.egress.tunnel import CHUNK, Streams, pipe

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64
"""Open client connections per proxy; more are answered 503."""

_MAX_ADDRESSES = 4
_ANSWER_TIMEOUT = 5.0
_STATUS = {
    400: "Bad Request",
    403: "Forbidden",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True)
class EgressEvent:
    """One connection attempt: ``allowed``, ``blocked`` (by the rules) or ``failed`` (network)."""

    kind: Literal["allowed", "blocked", "failed"]
    host: str
    port: int
    reason: str
    rule: str | None = None
    """The allow-list entry that let it through, when one did."""


@dataclass
class EgressStats:
    """Counters since start: attempts by outcome, refused heads, busy refusals, bytes moved."""

    allowed: int = 0
    blocked: int = 0
    failed: int = 0
    malformed: int = 0
    busy: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


@dataclass(frozen=True)
class _Open:
    host: str
    port: int
    address: str


class _Denied(Exception):
    def __init__(self, kind: str, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.status, self.reason, self.message = kind, status, reason, message


class EgressProxy:
    """The allow-list proxy of server ``name`` (``TOOLBOX/SERVER``) on ``socket_path``."""

    def __init__(
        self,
        name: str,
        socket_path: str | os.PathLike[str],
        allow: AllowList,
        on_event: Callable[[EgressEvent], None],
        *,
        allow_private: bool = False,
        connect_timeout: float = 10,
        idle_timeout: float = 300,
        head_timeout: float = 10,
        max_connections: int = MAX_CONNECTIONS,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.name = name
        self.socket_path = Path(socket_path)
        self.stats = EgressStats()
        self._allow = allow
        self._on_event = on_event
        self._allow_private = allow_private
        self._connect_timeout = connect_timeout
        self._idle_timeout = idle_timeout
        self._head_timeout = head_timeout
        self._max_connections = max_connections
        self._resolve = resolver
        self._server: asyncio.AbstractServer | None = None
        self._connections: dict[asyncio.Task[None], _Open | None] = {}

    @property
    def allow(self) -> AllowList:
        return self._allow

    @property
    def connections(self) -> int:
        """Client connections open now, tunnels and heads still arriving alike."""
        return len(self._connections)

    async def start(self) -> None:
        """Listen; a stale socket left by an earlier run is replaced."""
        path = self.socket_path
        if path.is_symlink() or path.exists():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise EgressError(f"{path} exists and is not a socket: remove it and start again")
            path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path=str(path), limit=CHUNK)
        # The server's container runs as another uid; the socket's folder guards who may reach it.
        os.chmod(path, 0o666)

    async def close(self) -> None:
        """Stop listening and end every open connection and tunnel."""
        if self._server is not None:
            self._server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    def update(self, allow: AllowList) -> None:
        """Apply a new allow-list now (from the proxy's event loop): to new connections, to
        those still connecting, and to open tunnels, which close when it no longer covers them."""
        self._allow = allow
        for task, opened in list(self._connections.items()):
            if opened is not None and not self._permits(opened):
                task.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            if len(self._connections) >= self._max_connections:
                self.stats.busy += 1
                limit = self._max_connections
                await _answer(writer, 503, f"{self.name} has {limit} egress connections open: close some")
                return
            self._connections[task] = None
            await self._handle(reader, writer, task)
        except ConnectionError:
            pass
        except asyncio.CancelledError:
            # update() and close() end a connection by cancelling its task; nothing awaits
            # it, and asyncio's stream callback reports a cancelled one as an error.
            pass
        finally:
            self._connections.pop(task, None)
            writer.close()

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, task: asyncio.Task[None]
    ) -> None:
        try:
            request = await read_request(reader, self._head_timeout)
        except HeadTimeout:
            self.stats.malformed += 1
            return
        except Refusal as refusal:
            self.stats.malformed += 1
            await _answer(writer, refusal.status, refusal.reason)
            return
        try:
            rule, address, upstream = await self._reach(request)
            opened = _Open(request.host, request.port, address)
            if not self._permits(opened):  # update() came while this one connected
                upstream[1].close()
                raise self._not_allowed(request)
        except _Denied as denied:
            self._emit(denied.kind, request, denied.reason, None)
            await _answer(writer, denied.status, denied.message)
            return
        try:
            self._connections[task] = opened
            self._emit("allowed", request, "", str(rule))
            if request.connect:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            first = request.upstream_head + request.leftover
            upstream[1].write(first)
            self._count(len(first), 0)
            await pipe((reader, writer), upstream, self._idle_timeout, self._count)
        finally:
            upstream[1].close()

    async def _reach(self, request: ProxyRequest) -> tuple[HostRule, str, Streams]:
        dest = authority(request.host, request.port)
        rule = self._allow.allows(request.host, request.port)
        if rule is None:
            raise self._not_allowed(request)
        deadline = asyncio.get_running_loop().time() + self._connect_timeout
        addresses = await self._addresses(request.host, request.port, deadline)
        if not (self._allow_private or rule.literal):
            addresses = [address for address in addresses if not is_private(address)]
            if not addresses:
                raise _Denied(
                    "blocked", 403, "private address",
                    f"{request.host} leads to a private address, which {self.name} may not reach: "
                    f"allow the address itself with tbx server egress {self.name} --allow-host ADDRESS:PORT",
                )
        for address in addresses[:_MAX_ADDRESSES]:
            try:
                async with asyncio.timeout_at(deadline):
                    streams = await asyncio.open_connection(address, request.port, limit=CHUNK)
            except TimeoutError:
                raise _Denied("failed", 504, "connect timeout", f"{dest} did not answer in time") from None
            except OSError:
                continue
            return rule, address, streams
        raise _Denied("failed", 502, "connect failed", f"could not connect to {dest}")

    def _not_allowed(self, request: ProxyRequest) -> _Denied:
        dest = authority(request.host, request.port)
        return _Denied(
            "blocked", 403, "not allowed",
            f"egress to {dest} is not allowed for {self.name}: tbx server egress {self.name} --allow-host {dest}",
        )

    async def _addresses(self, host: str, port: int, deadline: float) -> list[str]:
        if is_address(host):
            return [host]
        try:
            async with asyncio.timeout_at(deadline):
                addresses = await self._resolve(host, port)
        except TimeoutError:
            raise _Denied("failed", 504, "resolve timeout", f"{host} did not resolve in time") from None
        except OSError:
            addresses = []
        if not addresses:
            raise _Denied("failed", 502, "does not resolve", f"{host} does not resolve")
        return addresses

    def _permits(self, opened: _Open) -> bool:
        rule = self._allow.allows(opened.host, opened.port)
        if rule is None:
            return False
        return self._allow_private or rule.literal or not is_private(opened.address)

    def _emit(self, kind: str, request: ProxyRequest, reason: str, rule: str | None) -> None:
        setattr(self.stats, kind, getattr(self.stats, kind) + 1)
        event = EgressEvent(kind, request.host, request.port, reason, rule)  # type: ignore[arg-type]
        log.debug("egress %s %s %s (%s)", self.name, kind, authority(request.host, request.port), reason)
        try:
            self._on_event(event)
        except Exception:  # the proxy outlives a faulty listener
            log.exception("egress event listener of %s failed", self.name)

    def _count(self, up: int, down: int) -> None:
        self.stats.bytes_up += up
        self.stats.bytes_down += down


async def _answer(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    body = (message + "\n").encode("utf-8", "replace")
    head = (
        f"HTTP/1.1 {status} {_STATUS[status]}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode("ascii") + body)
    with contextlib.suppress(ConnectionError, TimeoutError):
        async with asyncio.timeout(_ANSWER_TIMEOUT):
            await writer.drain()
