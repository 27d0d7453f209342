"""Agent sessions of the Streamable HTTP transport.

A session is created by ``initialize`` and named by an id of 192 random bits that the
client echoes in ``Mcp-Session-Id``. It belongs to one agent and one endpoint: another
agent presenting the id gets a 404, exactly as for an id that never existed.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field


@dataclass
class AgentSession:
    id: str
    agent_id: str
    endpoint: str | None
    """Server name of a per-server endpoint, None for the aggregate ``/mcp``."""
    protocol_version: str
    on_behalf: bool = False
    created: float = field(default_factory=time.monotonic)
    last_seen: float = field(default_factory=time.monotonic)
    outbox: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(maxsize=256))
    """Server-to-client messages for the GET event stream (list_changed)."""
    visible: frozenset[str] = frozenset()
    """Tool names last shown, to know when to say tools/list_changed."""
    in_flight: dict[str | int, tuple[object, int]] = field(default_factory=dict)
    """Agent request id -> (forwarder, upstream number), for cancellation."""
    resource_servers: dict[str, str] = field(default_factory=dict)
    """Resource URI -> server id, learned from resources/list for resources/read."""

    def notify(self, message: bytes) -> None:
        """Queue a notification; a client that never reads its stream loses old ones."""
        if self.outbox.full():
            self.outbox.get_nowait()
        self.outbox.put_nowait(message)


class SessionStore:
    def __init__(self, idle_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self._sessions: dict[str, AgentSession] = {}

    def create(self, agent_id: str, endpoint: str | None, protocol_version: str, on_behalf: bool) -> AgentSession:
        session = AgentSession(secrets.token_urlsafe(24), agent_id, endpoint, protocol_version, on_behalf)
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str, agent_id: str) -> AgentSession | None:
        session = self._sessions.get(session_id)
        if session is None or session.agent_id != agent_id:
            return None
        session.last_seen = time.monotonic()
        return session

    def end(self, session_id: str) -> AgentSession | None:
        return self._sessions.pop(session_id, None)

    def __iter__(self):  # noqa: ANN204
        return iter(list(self._sessions.values()))

    def __len__(self) -> int:
        return len(self._sessions)

    def expire(self) -> list[AgentSession]:
        cutoff = time.monotonic() - self.idle_seconds
        gone = [s for s in self._sessions.values() if s.last_seen < cutoff]
        for session in gone:
            self._sessions.pop(session.id, None)
        return gone
