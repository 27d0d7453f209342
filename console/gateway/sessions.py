"""Agent sessions of the Streamable HTTP transport.

A session is created by ``initialize`` and named by an id of 192 random bits that the
client echoes in ``Mcp-Session-Id``. It belongs to one agent and one endpoint: another
agent presenting the id gets a 404, exactly as for an id that never existed.

One agent cannot exhaust the gateway with sessions: past ``per_agent`` its least
recently used session ends. The cost of a flood falls on the agent that floods.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
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
    """Server-to-client messages for the GET event stream (list_changed, log messages, updates)."""
    visible: dict[str, frozenset[str]] = field(default_factory=dict)
    """Item kind -> exposed names last shown, to know when to say ``*/list_changed``."""
    in_flight: dict[str | int, tuple[object, int]] = field(default_factory=dict)
    """Agent request id -> (forwarder, upstream number), for cancellation."""
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    log_level: str | None = None
    """The level the agent set with ``logging/setLevel``; None: it gets no log messages."""
    subscriptions: set[tuple[str, str]] = field(default_factory=set)
    """(server id, URI) the session subscribed to."""
    capabilities: dict[str, Any] = field(default_factory=dict)
    """What the client declared in ``initialize``: only what it declared may be asked of it."""

    def notify(self, message: bytes) -> None:
        """Queue a notification; a client that never reads its stream loses old ones."""
        if self.outbox.full():
            self.outbox.get_nowait()
        self.outbox.put_nowait(message)


class SessionStore:
    def __init__(self, idle_seconds: float, per_agent: int) -> None:
        self.idle_seconds = idle_seconds
        self.per_agent = per_agent
        self._sessions: dict[str, AgentSession] = {}
        self._by_agent: dict[str, OrderedDict[str, AgentSession]] = {}
        """Each agent's sessions, least recently used first."""

    def create(self, agent_id: str, endpoint: str | None, protocol_version: str,
               on_behalf: bool) -> tuple[AgentSession, list[AgentSession]]:
        """A new session, and the agent's sessions it pushed out (past ``per_agent``)."""
        session = AgentSession(secrets.token_urlsafe(24), agent_id, endpoint, protocol_version, on_behalf)
        own = self._by_agent.setdefault(agent_id, OrderedDict())
        evicted = []
        while len(own) >= self.per_agent:
            _sid, oldest = own.popitem(last=False)
            self._drop(oldest)
            evicted.append(oldest)
        own[session.id] = session
        self._sessions[session.id] = session
        return session, evicted

    def get(self, session_id: str, agent_id: str) -> AgentSession | None:
        session = self._sessions.get(session_id)
        if session is None or session.agent_id != agent_id:
            return None
        session.last_seen = time.monotonic()
        self._by_agent[agent_id].move_to_end(session_id)
        return session

    def end(self, session_id: str) -> AgentSession | None:
        session = self._sessions.get(session_id)
        if session is None:
            return None
        own = self._by_agent.get(session.agent_id)
        if own is not None:
            own.pop(session_id, None)
            if not own:
                del self._by_agent[session.agent_id]
        self._drop(session)
        return session

    def _drop(self, session: AgentSession) -> None:
        self._sessions.pop(session.id, None)
        session.ended.set()

    def __iter__(self) -> Iterator[AgentSession]:
        return iter(list(self._sessions.values()))

    def __len__(self) -> int:
        return len(self._sessions)

    def of_agent(self, agent_id: str) -> int:
        return len(self._by_agent.get(agent_id, ()))

    def expire(self) -> list[AgentSession]:
        cutoff = time.monotonic() - self.idle_seconds
        gone = [s for s in self._sessions.values() if s.last_seen < cutoff]
        for session in gone:
            self.end(session.id)
        return gone
