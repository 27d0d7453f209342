"""Server-to-agent notifications: who gets each one, decided when it arrives.

Many agents share one upstream session, so nothing a server says is addressed to an
agent by itself; the gateway decides:

- progress goes to the one call that asked for it. Each call that carries a
  ``progressToken`` gets a gateway token upstream (``tbxp-<nonce>-<n>``), kept per
  (server, token): a server can only speak about its own calls, and an agent's own
  token is put back only on its own stream. A token nobody holds is dropped (counted).
- ``notifications/message`` goes to every session of an agent entitled to the server
  (it may use at least one of its items, now) that set a level, at that level; and to
  the stateless requests (2026-07-28) in flight on the server that asked for a level
  in their ``_meta``, on their own response stream (``LogListener``).
- ``notifications/resources/updated`` goes to the sessions subscribed to that URI whose
  agent may still read it: grants change live, so entitlement is checked per update.

Relayed notifications are counted, not recorded one by one (a chatty server would
otherwise write the audit log full); ``summary`` turns the counts into one record per
interval. A server's progress and logging are also rate-limited per server: past
``per_second`` messages the rest of that second are dropped unread (counted too).
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from console.audit import AuditEvent
from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY as SUBSCRIPTION_ID

from console.gateway.audit_writer import counted
from console.gateway.jsonrpc import dumps
from console.gateway.sessions import AgentSession, SessionStore
from console.gateway.snapshot import Snapshots

LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
Sink = Callable[[bytes], None]
SUMMARY_SECONDS = 60.0
_PROGRESS = b'"notifications/progress"'
_MESSAGE = b'"notifications/message"'
_UPDATED = b'"notifications/resources/updated"'


@dataclass(frozen=True)
class _Call:
    """A call waiting for progress: the agent's own token and where its events go."""

    agent_token: str | int
    sink: Sink


@dataclass(eq=False)
class LogListener:
    """A stateless request (2026-07-28) that asked for the server's log messages while it
    runs (``io.modelcontextprotocol/logLevel``): they go on its own response stream."""

    agent_id: str
    endpoint: str | None
    level: str
    sink: Sink


def severity(level: Any) -> int:
    """A level's rank (unknown levels rank as the most severe: never hidden by a filter)."""
    return LEVELS.index(level) if level in LEVELS else len(LEVELS) - 1


def uses_server(snapshots: Snapshots, agent_id: str, server_id: str, now: float) -> bool:
    """The agent may use at least one item of the server right now."""
    policy = snapshots.current.surface.policy
    return any(sid == server_id for sid, _ref in policy.visible_items(agent_id, now))


class Relay:
    def __init__(self, sessions: SessionStore, snapshots: Snapshots, *, per_second: int = 100) -> None:
        self.sessions = sessions
        self.snapshots = snapshots
        self.per_second = per_second
        self.namespace = f"tbxp-{secrets.token_hex(4)}-"
        self._numbers = itertools.count(1)
        self._calls: dict[tuple[str, str], _Call] = {}
        self._subscribers: dict[tuple[str, str], set[AgentSession]] = {}
        self._listeners: dict[str, set[LogListener]] = {}
        """Server id -> the stateless requests in flight there that asked for its logs."""
        self._budget: dict[str, tuple[int, int]] = {}
        """Server id -> (second, messages relayed in it)."""
        self.counts: Counter[str] = Counter()
        """``<kind>.<outcome>`` -> notifications since the last summary."""
        self._summarised = time.monotonic()

    # -- progress ----------------------------------------------------------------------

    def open_call(self, server_id: str, agent_token: str | int, sink: Sink) -> str:
        """The token to send upstream in the call's ``_meta.progressToken``."""
        token = f"{self.namespace}{next(self._numbers)}"
        self._calls[(server_id, token)] = _Call(agent_token, sink)
        return token

    def close_call(self, server_id: str, token: str) -> None:
        self._calls.pop((server_id, token), None)

    # -- log messages of stateless requests ---------------------------------------------

    def listen(self, server_id: str, listener: LogListener) -> None:
        self._listeners.setdefault(server_id, set()).add(listener)

    def unlisten(self, server_id: str, listener: LogListener) -> None:
        listeners = self._listeners.get(server_id)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[server_id]

    def listening(self, server_id: str) -> list[LogListener]:
        return list(self._listeners.get(server_id, ()))

    # -- subscriptions -----------------------------------------------------------------

    def subscribe(self, server_id: str, uri: str, session: AgentSession) -> bool:
        """Add a subscriber; True when it is the first (the server must be asked)."""
        subscribers = self._subscribers.setdefault((server_id, uri), set())
        first = not subscribers
        subscribers.add(session)
        return first

    def unsubscribe(self, server_id: str, uri: str, session: AgentSession) -> bool:
        """Remove a subscriber; True when none is left (the server may stop)."""
        subscribers = self._subscribers.get((server_id, uri))
        if subscribers is None:
            return False
        subscribers.discard(session)
        if subscribers:
            return False
        del self._subscribers[(server_id, uri)]
        return True

    def subscriptions(self) -> list[tuple[str, str]]:
        return list(self._subscribers)

    def subscribed(self, server_id: str, uri: str) -> int:
        return len(self._subscribers.get((server_id, uri), ()))

    # -- what servers say --------------------------------------------------------------

    def server_said(self, server_id: str, line: bytes) -> None:
        """One notification line of a server (told by its forwarder)."""
        if _PROGRESS in line or _MESSAGE in line:
            if not self._within_budget(server_id):
                self.counts["progress.dropped" if _PROGRESS in line else "message.dropped"] += 1
            elif _PROGRESS in line:
                self._progress(server_id, line)
            else:
                self._log(server_id, line)
        elif _UPDATED in line:
            self._updated(server_id, line)

    def _progress(self, server_id: str, line: bytes) -> None:
        params = _params(line)
        token = params.get("progressToken") if params else None
        call = self._calls.get((server_id, token)) if isinstance(token, str) else None
        if call is None:
            self.counts["progress.unknown"] += 1
            return
        self.counts["progress.relayed"] += 1
        call.sink(dumps({"jsonrpc": "2.0", "method": "notifications/progress",
                         "params": {**params, "progressToken": call.agent_token}}))  # type: ignore[dict-item]

    def _within_budget(self, server_id: str) -> bool:
        second = int(time.monotonic())
        start, used = self._budget.get(server_id, (second, 0))
        if start != second:
            used = 0
        if used >= self.per_second:
            return False
        self._budget[server_id] = (second, used + 1)
        return True

    def _log(self, server_id: str, line: bytes) -> None:
        params = _params(line)
        if params is None:
            self.counts["message.malformed"] += 1
            return
        rank = severity(params.get("level"))
        surface = self.snapshots.current.surface
        name = surface.server_names.get(server_id)
        now = time.time()
        entitled: dict[str, bool] = {}
        aggregate: bytes | None = None
        delivered = 0
        hearers: list[AgentSession | LogListener] = [*self.sessions, *self._listeners.get(server_id, ())]
        for hearer in hearers:
            level = hearer.log_level if isinstance(hearer, AgentSession) else hearer.level
            if level is None or rank < severity(level) or hearer.endpoint not in (None, name):
                continue
            agent = hearer.agent_id
            if agent not in entitled:
                entitled[agent] = uses_server(self.snapshots, agent, server_id, now)
            if not entitled[agent]:
                continue
            if hearer.endpoint is None:
                # On /mcp several servers log into one stream: the logger says whose it is.
                aggregate = aggregate or _logged_by(name or "?", params)
            said = line if hearer.endpoint else aggregate
            hearer.notify(said) if isinstance(hearer, AgentSession) else hearer.sink(said)  # type: ignore[arg-type]
            delivered += 1
        self.counts["message.relayed" if delivered else "message.unheard"] += 1

    def _updated(self, server_id: str, line: bytes) -> None:
        params = _params(line)
        uri = params.get("uri") if params else None
        subscribers = self._subscribers.get((server_id, uri), set()) if isinstance(uri, str) else set()
        if not subscribers:
            self.counts["updated.unknown"] += 1
            return
        meta = params.get("_meta") if params else None
        if isinstance(meta, dict) and SUBSCRIPTION_ID in meta:
            # From the gateway's own listen stream with a server of the 2026-07-28 era:
            # its id is the gateway's business (an agent's listen stream gets its own).
            line = dumps({"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {
                **params, "_meta": {k: v for k, v in meta.items() if k != SUBSCRIPTION_ID}}})  # type: ignore[dict-item]
        surface = self.snapshots.current.surface
        now = time.time()
        for session in list(subscribers):
            if session.ended.is_set():
                subscribers.discard(session)
                continue
            item, decision = surface.resolve_uri(session.agent_id, session.endpoint, uri, now)  # type: ignore[arg-type]
            if decision.allowed and item is not None and item.server_id == server_id:
                session.notify(line)
                self.counts["updated.relayed"] += 1
            else:
                self.counts["updated.withheld"] += 1

    def stale_subscriptions(self) -> list[tuple[str, str]]:
        """(server, URI) whose subscribers all left: the server can be told to stop."""
        gone = []
        for key, subscribers in list(self._subscribers.items()):
            subscribers -= {s for s in subscribers if s.ended.is_set()}
            if not subscribers:
                del self._subscribers[key]
                gone.append(key)
        return gone

    def summary(self, every: float = SUMMARY_SECONDS) -> AuditEvent | None:
        """One record for the notifications of the last ``every`` seconds, if any."""
        now = time.monotonic()
        if not self.counts or now - self._summarised < every:
            return None
        self._summarised = now
        return counted(self.counts, "gateway", "notifications.relayed", "ok")


def _logged_by(server: str, params: dict[str, Any]) -> bytes:
    logger = params.get("logger")
    named = f"{server}/{logger}" if isinstance(logger, str) and logger else server
    return dumps({"jsonrpc": "2.0", "method": "notifications/message", "params": {**params, "logger": named}})


def _params(line: bytes) -> dict[str, Any] | None:
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    params = message.get("params") if isinstance(message, dict) else None
    return params if isinstance(params, dict) else None
