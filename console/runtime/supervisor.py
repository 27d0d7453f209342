"""Keeps one long-lived MCP session per server and knows, within seconds, how each is.

For every server of a toolbox a watcher task finds its container, attaches, initializes
once, and then pings it every ``ping_interval`` seconds. A crash ends the attach stream
at once; a hang misses a ping. Engine events (start, die, restart, oom) wake the
watcher so a restarted server is reconnected without waiting for a poll. The sessions
are the ones the gateway forwards calls over: one per server, shared by all agents.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace

from console.runtime import streams
from console.runtime.containers import LABEL_MANAGED, LABEL_SERVER
from console.runtime.enginehttp import Endpoint, EngineError, containers_with_labels, inspect
from console.runtime.session import Ask, ServerUnavailable, Session, mcp_session, stderr_tail
from console.trust.redact import Redactor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Health:
    server_id: str
    label: str
    state: str = "unknown"
    """Docker's status of the container, or ``missing``."""
    health: str = "unknown"
    """healthy | starting | unresponsive | down | stopped | unknown"""
    restarts: int = 0
    ping_ms: float | None = None
    last_error: str | None = None
    changed_at: float = field(default_factory=time.monotonic)
    container_id: str | None = None


@dataclass
class WatchedServer:
    server_id: str
    label: str
    want_running: bool
    redactor: Redactor = field(default_factory=Redactor)
    asks: tuple[str, ...] = ()
    """Server-to-client requests its session declares (``ServerInstance.may_ask``)."""
    prepare: Callable[[str], Callable[[], Awaitable[None]] | None] | None = None
    """Given the container's id, what runs once attached and before initialize: hands
    a server with secrets its secrets if its launcher waits (after a restart)."""
    connect: Callable[..., AbstractAsyncContextManager[Session]] | None = None
    """A remote server: opens its session (``remote_mcp_session``'s keyword arguments
    but the target); there is no container to find, start or watch."""
    reach: tuple[object, ...] = ()
    """What a remote server's session is made from (URL, header secrets, sign-in): when
    it changes (``tbx server edit --url``), the live session is made again."""


class Supervisor:
    def __init__(
        self,
        endpoint: Endpoint,
        servers: list[WatchedServer],
        *,
        ping_interval: float = 2.0,
        ping_timeout: float = 2.0,
        start_timeout: float = 60.0,
    ) -> None:
        self.endpoint = endpoint
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.start_timeout = start_timeout
        self._servers = {s.server_id: s for s in servers}
        self._health = {s.server_id: Health(s.server_id, s.label) for s in servers}
        self._sessions: dict[str, Session] = {}
        self._ready: dict[str, asyncio.Event] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._events_task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[Health], None]] = []
        self._session_listeners: list[Callable[[str, Session | None], None]] = []
        self.ask_for: Callable[[str], Ask] | None = None
        """Who answers a server's sampling, elicitation and roots requests (the gateway)."""

    # -- public ------------------------------------------------------------------------

    def health(self, server_id: str) -> Health:
        return self._health[server_id]

    def watched(self, server_id: str) -> Health | None:
        """The server's health, or None if it is not watched."""
        return self._health.get(server_id)

    def all_health(self) -> list[Health]:
        return list(self._health.values())

    def on_change(self, listener: Callable[[Health], None]) -> None:
        self._listeners.append(listener)

    def on_session(self, listener: Callable[[str, Session | None], None]) -> None:
        """Told when a server's session comes up (with it) and goes down (with None)."""
        self._session_listeners.append(listener)

    def _tell_session(self, server_id: str, session: Session | None) -> None:
        for listener in tuple(self._session_listeners):
            try:
                listener(server_id, session)
            except Exception:  # one listener's failure must not cut the others off
                log.exception("session listener failed")

    async def session(self, server_id: str, wait: float = 10.0) -> Session:
        """The server's live session, waiting up to ``wait`` seconds for it to come up."""
        ready = self._ready.get(server_id)
        if ready is None:
            raise ServerUnavailable(f"server {server_id} is not supervised")
        try:
            await asyncio.wait_for(ready.wait(), wait)
        except TimeoutError:
            health = self._health[server_id]
            raise ServerUnavailable(
                f"server {health.label} is {health.health}" + (f": {health.last_error}" if health.last_error else "")
            ) from None
        return self._sessions[server_id]

    def watch(self, server: WatchedServer) -> None:
        """Start (or update) watching a server, e.g. after it was added or renamed."""
        known = self._servers.get(server.server_id)
        self._servers[server.server_id] = server
        self._health.setdefault(server.server_id, Health(server.server_id, server.label))
        if server.server_id not in self._tasks:
            if self._events_task is not None:  # not before __aenter__: it starts them all
                self._start_watcher(server.server_id)
        elif known is not None and known.want_running != server.want_running:
            self._wake[server.server_id].set()
        live = self._sessions.get(server.server_id)
        if live is not None and server.connect is not None and not server.want_running:
            # A remote server the owner stopped: no container stops under its session.
            asyncio.get_running_loop().create_task(live.channel.aclose())
        elif live is not None and known is not None and known.reach != server.reach:
            asyncio.get_running_loop().create_task(live.channel.aclose())
        elif live is not None and live.asks != frozenset(server.asks):
            # The owner changed what the server may ask agents for: a session declares its
            # client capabilities once, at initialize, so it is made again.
            asyncio.get_running_loop().create_task(live.channel.aclose())

    def unwatch(self, server_id: str) -> None:
        task = self._tasks.pop(server_id, None)
        if task:
            task.cancel()
        for table in (self._servers, self._health, self._sessions, self._ready, self._wake):
            table.pop(server_id, None)  # type: ignore[attr-defined]

    async def __aenter__(self) -> Supervisor:
        self._events_task = asyncio.create_task(self._watch_events(), name="supervisor:events")
        for server_id in self._servers:
            self._start_watcher(server_id)
        return self

    async def __aexit__(self, *exc: object) -> None:
        tasks = [*self._tasks.values(), *([self._events_task] if self._events_task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    # -- internals ---------------------------------------------------------------------

    def _start_watcher(self, server_id: str) -> None:
        self._ready[server_id] = asyncio.Event()
        self._wake[server_id] = asyncio.Event()
        self._tasks[server_id] = asyncio.create_task(self._watch_server(server_id), name=f"supervisor:{server_id}")

    def _update(self, server_id: str, **changes: object) -> None:
        old = self._health.get(server_id)
        if old is None:
            return
        new = replace(old, **changes)  # type: ignore[arg-type]
        if new.health != old.health:
            new = replace(new, changed_at=time.monotonic())
        if new != old:
            self._health[server_id] = new
            for listener in tuple(self._listeners):
                listener(new)

    async def _sleep_or_wake(self, server_id: str, seconds: float) -> None:
        wake = self._wake[server_id]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), seconds)
        wake.clear()

    async def _find_container(self, server_id: str) -> dict | None:
        found = await containers_with_labels(self.endpoint, [f"{LABEL_MANAGED}=true", f"{LABEL_SERVER}={server_id}"])
        return await inspect(self.endpoint, found[0]["Id"]) if found else None

    async def _watch_server(self, server_id: str) -> None:
        if self._servers[server_id].connect is not None:
            return await self._watch_remote(server_id)
        backoff = 0.25
        while True:
            server = self._servers[server_id]
            try:
                attrs = await self._find_container(server_id)
            except EngineError as exc:
                self._update(server_id, health="unknown", last_error=str(exc))
                await self._sleep_or_wake(server_id, 2.0)
                continue
            if attrs is None:
                self._update(server_id, state="missing", container_id=None, ping_ms=None,
                             health="down" if server.want_running else "stopped")
                await self._sleep_or_wake(server_id, 2.0)
                continue
            state = attrs["State"]
            self._update(server_id, state=state["Status"], restarts=int(attrs.get("RestartCount", 0)),
                         container_id=attrs["Id"])
            if state.get("Restarting") or not state.get("Running"):
                word = "starting" if state.get("Restarting") else ("down" if server.want_running else "stopped")
                error = None
                if state.get("OOMKilled"):
                    error = "killed: out of memory"
                elif state.get("ExitCode"):
                    error = f"exited with code {state['ExitCode']}"
                self._update(server_id, health=word, ping_ms=None, **({"last_error": error} if error else {}))
                await self._sleep_or_wake(server_id, 1.0)
                continue
            connected = await self._hold_session(server_id, attrs["Id"])
            backoff = 0.25 if connected else min(backoff * 2, 5.0)
            await self._sleep_or_wake(server_id, backoff)

    async def _watch_remote(self, server_id: str) -> None:
        """A remote server: connect while it should run, again with backoff when it goes.
        Its state is the owner's wish (``running`` or ``stopped``); its health says how it is."""
        backoff = 0.25
        while True:
            if not self._servers[server_id].want_running:
                self._update(server_id, state="stopped", health="stopped", ping_ms=None, last_error=None)
                await self._sleep_or_wake(server_id, 2.0)
                continue
            self._update(server_id, state="running")
            connected = await self._hold_session(server_id, None)
            backoff = 0.25 if connected else min(backoff * 2, 5.0)
            await self._sleep_or_wake(server_id, backoff)

    async def _hold_session(self, server_id: str, container_id: str | None) -> bool:
        """Run one session until the server dies; return whether it ever came up."""
        server = self._servers[server_id]
        options = {"timeout": self.start_timeout, "redactor": server.redactor, "label": f"server {server.label}",
                   "asks": server.asks, "ask": self.ask_for(server_id) if self.ask_for else None}
        if server.connect is not None:
            opened = server.connect(**options)
        else:
            assert container_id is not None
            opened = mcp_session(self.endpoint, container_id, **options,
                                 before_initialize=server.prepare(container_id) if server.prepare else None)
        try:
            async with opened as session:
                self._sessions[server_id] = session
                self._tell_session(server_id, session)  # before waiters wake: they find it ready
                self._ready[server_id].set()
                await self._ping_loop(server_id, session)
                await asyncio.sleep(0.1)  # let the dying server's last stderr arrive
                self._update(server_id, health="down", ping_ms=None,
                             last_error=f"{server.redactor.redact(session.channel.close_reason)}; stderr: "
                                        f"{stderr_tail(session.channel, server.redactor)}")
                return True
        except ServerUnavailable as exc:
            self._update(server_id, health="unresponsive", ping_ms=None, last_error=str(exc))
            return False
        finally:
            if server_id in self._ready:
                self._ready[server_id].clear()
            if self._sessions.pop(server_id, None) is not None:
                self._tell_session(server_id, None)

    async def _ping_loop(self, server_id: str, session: Session) -> None:
        closed = session.channel.closed
        while not closed.is_set():
            started = time.perf_counter()
            try:
                await asyncio.wait_for(session.ping(), self.ping_timeout)
                self._update(server_id, health="healthy", ping_ms=(time.perf_counter() - started) * 1000,
                             last_error=None)
            except TimeoutError:
                self._update(server_id, health="unresponsive", ping_ms=None,
                             last_error=f"no answer to an MCP ping within {self.ping_timeout:g}s")
            except Exception as exc:  # the session broke mid-ping: the close is handled below
                if not closed.is_set():
                    self._update(server_id, health="unresponsive", last_error=f"ping failed: {exc}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closed.wait(), self.ping_interval)

    async def _watch_events(self) -> None:
        while True:
            try:
                async for event in streams.events(self.endpoint):
                    attributes = event.get("Actor", {}).get("Attributes", {})
                    server_id = attributes.get(LABEL_SERVER)
                    if server_id in self._wake:
                        if event.get("Action") == "oom":
                            self._update(server_id, last_error="killed: out of memory")
                        self._wake[server_id].set()
            except (EngineError, ConnectionError, OSError) as exc:
                log.debug("engine event stream broke (%s); retrying", exc)
            await asyncio.sleep(1.0)
