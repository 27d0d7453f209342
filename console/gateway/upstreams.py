"""The servers' shared sessions as the gateway forwards over them, verified first.

When a server's session comes up (the gateway starts, the server restarts, its
container is re-created) or the server says its list changed, nothing is forwarded to
it until its definitions were discovered again and compared with the pins: a server
that changed a tool while it was down cannot answer a call in between. A caller that
arrives meanwhile waits (bounded) and is then decided again on the snapshot the
verification produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from console.gateway.forwarder import Forwarder, UpstreamFailed
from console.gateway.upstream_listen import UpstreamListen
from console.runtime.session import ServerUnavailable, Session

log = logging.getLogger(__name__)

Verify = Callable[[str, Session], Awaitable[int]]
"""Re-discover a server over its session and record it; returns the snapshot generation
that includes the outcome."""
SessionWait = Callable[[str, float], Awaitable[Session]]
ASK_MARKERS = (("sampling", b'"sampling/createMessage"'), ("elicitation", b'"elicitation/create"'),
               ("roots", b'"roots/list"'))
LIST_CHANGED = (b"notifications/tools/list_changed", b"notifications/prompts/list_changed",
                b"notifications/resources/list_changed")


@dataclass(eq=False)
class Upstream:
    server_id: str
    session: Session
    forwarder: Forwarder
    verified: asyncio.Event = field(default_factory=asyncio.Event)
    verified_generation: int = 0
    """The snapshot generation that holds this session's verified definitions."""
    task: asyncio.Task[None] | None = None
    log_level: str | None = None
    """The level the gateway last set on this session (None: the server's default)."""
    listen: UpstreamListen | None = None
    """The listen stream kept open with a server of the 2026-07-28 era (``upstream_listen``)."""

    @property
    def modern(self) -> bool:
        """The server speaks only the 2026-07-28 era: log levels and input go per request."""
        return self.session.modern

    @property
    def logs(self) -> bool:
        return self.session.client.server_capabilities.logging is not None

    @property
    def can_log(self) -> bool:
        """Whether ``logging/setLevel`` sets what the server logs (the handshake era's way)."""
        return self.logs and not self.modern

    @property
    def can_subscribe(self) -> bool:
        resources = self.session.client.server_capabilities.resources
        return bool(resources is not None and resources.subscribe)


class Upstreams:
    def __init__(self, session_wait: SessionWait, verify: Verify, wait_seconds: float) -> None:
        self._session_wait = session_wait
        self._verify = verify
        self.wait_seconds = wait_seconds
        self._entries: dict[str, Upstream] = {}
        self._listeners: list[Callable[[str, bytes], None]] = []
        self._undeclared: Callable[[str, bytes], None] | None = None

    def on_undeclared_request(self, listener: Callable[[str, bytes], None]) -> None:
        """Told (server id, line) of a request a live server sends although its session did
        not declare that capability (the SDK refuses it; this is for the record)."""
        self._undeclared = listener

    def on_notification(self, listener: Callable[[str, bytes], None]) -> None:
        """Told (server id, line) of every notification a live server writes."""
        self._listeners.append(listener)

    def live(self, server_id: str) -> Upstream | None:
        """The server's current upstream, verified or not (None when it has none)."""
        found = self._entries.get(server_id)
        return found if found is not None and found.forwarder.alive else None

    def session_changed(self, server_id: str, session: Session | None) -> None:
        """The supervisor's listener: a server's session came up (or went away)."""
        old = self._entries.pop(server_id, None)
        if old is not None and old.task is not None:
            old.task.cancel()
        if old is not None and old.listen is not None:
            asyncio.get_running_loop().create_task(old.listen.close())
        if session is None:
            return
        envelope = session.envelope() if session.modern else None
        upstream = Upstream(server_id, session, Forwarder(session.channel, envelope))
        upstream.forwarder.on_notification(lambda line: self._notified(upstream, line))
        upstream.forwarder.on_request(lambda line: self._requested(upstream, line))
        self._entries[server_id] = upstream
        if session.modern:
            upstream.listen = UpstreamListen(upstream.forwarder, server_id)
            upstream.listen.start()
        self._start_verification(upstream)

    def _notified(self, upstream: Upstream, line: bytes) -> None:
        if self._entries.get(upstream.server_id) is not upstream:
            return  # a session being replaced: nothing it says now is news
        if any(marker in line for marker in LIST_CHANGED):
            self._start_verification(upstream)
            return
        for listener in self._listeners:
            listener(upstream.server_id, line)

    def _requested(self, upstream: Upstream, line: bytes) -> None:
        if self._undeclared is None or self._entries.get(upstream.server_id) is not upstream:
            return
        if not any(marker in line and kind not in upstream.session.asks for kind, marker in ASK_MARKERS):
            return
        self._undeclared(upstream.server_id, line)

    def _start_verification(self, upstream: Upstream) -> None:
        upstream.verified.clear()
        if upstream.task is not None:
            upstream.task.cancel()
        upstream.task = asyncio.get_running_loop().create_task(
            self._verification(upstream), name=f"gateway:verify:{upstream.server_id}")

    async def _verification(self, upstream: Upstream) -> None:
        """Verify, retrying with backoff while this is still the server's live session
        (a busy vault lock or a slow listing must not leave it unverified for good)."""
        delay = 0.5
        while True:
            try:
                upstream.verified_generation = await self._verify(upstream.server_id, upstream.session)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - retried, and calls wait (bounded) meanwhile
                if self._entries.get(upstream.server_id) is not upstream or not upstream.forwarder.alive:
                    return  # the session is gone: its successor verifies afresh
                log.warning("verifying %s failed (retrying in %gs): %s", upstream.server_id, delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            upstream.verified.set()
            return

    def verifying(self, server_id: str) -> bool:
        found = self._entries.get(server_id)
        return found is not None and not found.verified.is_set()

    async def ready(self, server_id: str) -> Upstream:
        """The server's verified upstream, waiting up to ``wait_seconds`` for it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        found = self._entries.get(server_id)
        if found is None or not found.forwarder.alive:
            try:
                await self._session_wait(server_id, self.wait_seconds)
            except ServerUnavailable as exc:
                raise UpstreamFailed(str(exc)) from None
            found = self._entries.get(server_id)
            if found is None or not found.forwarder.alive:
                raise UpstreamFailed("the server is reconnecting")
        if not found.verified.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(found.verified.wait(), max(0.0, deadline - loop.time()))
            if not found.verified.is_set():
                raise UpstreamFailed("its tools are still being checked against their pins after a restart")
        return found

    async def close(self) -> None:
        for upstream in list(self._entries.values()):
            if upstream.listen is not None:
                await upstream.listen.close()
            if upstream.task is not None:
                upstream.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await upstream.task
        self._entries.clear()
