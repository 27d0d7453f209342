"""The HTTP server under the gateway: uvicorn, held to connection limits an attacker cannot outlast.

uvicorn closes a kept-alive connection that stays idle, but waits for ever on one that
never finishes its headers, and accepts connections until the process runs out of file
descriptors. Here every connection must deliver a request's headers within
``header_timeout`` of its first byte (or of connecting); at most ``max_connections`` are
open — held under the process's file limit, which is raised as far as the system
allows — and when they are all taken, the one idle the longest is closed to make room.
A flood of idle connections thus costs the flooder its own connections, not an honest
agent's, whose connection is busy or was used a moment ago.

uvicorn's own signal handling is replaced: it re-raises SIGTERM after serving, which
kills the process before the gateway has flushed its audit log and withdrawn its
address. The gateway installs its handlers instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
from collections import OrderedDict
from collections.abc import Generator
from typing import Any

import uvicorn

log = logging.getLogger(__name__)
FD_RESERVE = 256
"""Descriptors kept free for what is not a client connection: the vault, the audit log,
server attach streams, the engine's socket."""


def raise_file_limit(wanted: int) -> int:
    """Raise the limit on open files to ``wanted`` where the system allows (root may raise
    the hard limit too), else as far as the hard limit; return the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    keep_hard = hard == resource.RLIM_INFINITY or hard >= wanted
    for limits in ((wanted, hard if keep_hard else wanted), (hard, hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
            return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        except (ValueError, OSError):
            continue
    return soft


class ConnectionGuard:
    """Every open connection, least recently active first, in two groups: those that never
    completed a request (what a flood of idle connections is made of) and those that did.
    When full, an idle connection of the first group goes before one of the second."""

    def __init__(self, max_connections: int, header_timeout: float) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self._fresh: OrderedDict[Any, None] = OrderedDict()
        self._used: OrderedDict[Any, None] = OrderedDict()
        self.evicted = 0
        self.refused = 0

    def __len__(self) -> int:
        return len(self._fresh) + len(self._used)

    def opened(self, connection: Any) -> bool:
        """Admit a new connection, closing the longest-idle one if all slots are taken."""
        if len(self) >= self.max_connections:
            idle = next((c for group in (self._fresh, self._used) for c in group if not c.busy), None)
            if idle is None:
                self.refused += 1
                return False
            self.closed(idle)
            self.evicted += 1
            idle.transport.close()
        self._fresh[connection] = None
        return True

    def touched(self, connection: Any, served: bool) -> None:
        if served and connection in self._fresh:
            del self._fresh[connection]
            self._used[connection] = None
        for group in (self._fresh, self._used):
            if connection in group:
                group.move_to_end(connection)

    def closed(self, connection: Any) -> None:
        self._fresh.pop(connection, None)
        self._used.pop(connection, None)


class _Guarded:
    """Mixed into uvicorn's HTTP protocol class: admission, activity and the header deadline."""

    guard: ConnectionGuard
    transport: asyncio.Transport
    cycle: Any
    loop: asyncio.AbstractEventLoop

    @property
    def busy(self) -> bool:
        """A request is being read or answered (an open event stream is busy for good)."""
        return self.cycle is not None and not self.cycle.response_complete

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[misc]
        self._headers_due: asyncio.TimerHandle | None = None
        if not self.guard.opened(self):
            transport.abort()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        busy = self.busy
        self.guard.touched(self, served=busy)
        if busy:
            self._disarm()
        else:
            self._arm()  # part of a request's headers: they must all be here in time

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.closed(self)
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self) -> None:
        if self._headers_due is None:
            self._headers_due = self.loop.call_later(self.guard.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if getattr(self, "_headers_due", None) is not None:
            self._headers_due.cancel()  # type: ignore[union-attr]
            self._headers_due = None

    def _headers_late(self) -> None:
        self._headers_due = None
        if not self.busy:
            self.transport.close()


def guarded_protocol(guard: ConnectionGuard) -> type[asyncio.Protocol]:
    """uvicorn's fastest available HTTP/1.1 protocol class, with ``guard`` mixed in."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol as base  # type: ignore[assignment]
    return type(f"Guarded{base.__name__}", (_Guarded, base), {"guard": guard})


class GatewayServer(uvicorn.Server):
    """uvicorn without its signal handling (the gateway stops itself cleanly)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def build_server(app: Any, *, host: str, port: int, tls: tuple[str, str] | None, guard: ConnectionGuard,
                 idle_timeout: float) -> GatewayServer:
    options: dict[str, Any] = {"ssl_certfile": tls[0], "ssl_keyfile": tls[1]} if tls else {}
    config = uvicorn.Config(app, host=host, port=port, http=guarded_protocol(guard), lifespan="off",
                            log_level="error", access_log=False, timeout_keep_alive=int(max(1, idle_timeout)),
                            timeout_graceful_shutdown=5, backlog=4096, **options)
    return GatewayServer(config)
