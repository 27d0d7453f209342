"""The request context every pipeline step works on, and how a step refuses.

An ``Exchange`` is one HTTP request of an agent: what arrived, what each step decided,
and what goes back. Steps read and fill it; none of them sees the gateway itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from console.gateway import jsonrpc as rpc
from console.gateway.auth import Identity
from console.gateway.sessions import AgentSession
from console.gateway.snapshot import Snapshot
from console.gateway.surface import ItemRef

Headers = dict[bytes, bytes]


class Refused(Exception):
    """A step said no. ``status`` is the HTTP status (200 for a JSON-RPC error reply);
    ``reason`` is what the audit log records, ``message`` what the agent is told."""

    def __init__(self, message: str, *, status: int = 200, code: int = rpc.INVALID_REQUEST,
                 reason: str = "invalid-request", decision: str = "deny",
                 headers: list[tuple[bytes, bytes]] | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.reason, self.decision = status, code, reason, decision
        self.headers = headers or []
        self.data = data
        """The JSON-RPC error's ``data`` (what a client may act on: the supported versions)."""


JSON = [(b"content-type", b"application/json")]
"""The headers of a reply in plain JSON."""


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass
class Exchange:
    endpoint: str | None
    """Server name of a per-server endpoint, None for the aggregate ``/mcp``."""
    headers: Headers
    snapshot: Snapshot
    started: float = field(default_factory=time.perf_counter)
    identity: Identity | None = None
    session: AgentSession | None = None
    protocol: str | None = None
    """The version of a stateless (2026-07-28) request, which has no session; None for a
    session's request (its version is the session's)."""
    body: bytes = b""
    """The JSON-RPC message as it arrived."""
    message: dict[str, Any] | None = None
    method: str = ""
    request_id: rpc.JsonId = None
    params: dict[str, Any] = field(default_factory=dict)
    item: ItemRef | None = None
    """The grantable item the request uses, once authorized."""
    upstream: tuple[str, dict[str, Any]] | None = None
    """(method, params) to send to the item's server, for requests that are forwarded."""
    target: str = ""
    """What the audit record names: ``tool:local/time/get_current_time``, ``session:/mcp``..."""
    decision: str = "allow"
    detail: dict[str, Any] = field(default_factory=dict)
    reply: Reply | None = None
    listening: AgentSession | None = None
    """The session behind the notification stream a ``subscriptions/listen`` opened."""
    events: Callable[[bytes], None] | None = None
    """Where messages about this request go before its reply (progress), when the client
    takes an event stream; the first one turns the response into that stream."""

    @property
    def is_request(self) -> bool:
        """A JSON-RPC request (it has an id and a method), as opposed to a notification."""
        return self.message is not None and "id" in self.message and isinstance(self.message.get("method"), str)

    def refuse(self, refusal: Refused) -> Reply:
        self.decision = refusal.decision
        self.detail.setdefault("reason", refusal.reason)
        if refusal.decision == "error":
            self.detail.setdefault("error", str(refusal))
        # Masked like any reply: an error message may echo what a server said.
        body, _found = self.snapshot.redactor.mask_json(rpc.error(self.request_id, refusal.code, str(refusal),
                                                                 refusal.data))
        self.reply = Reply(refusal.status, body, [(b"content-type", b"application/json"), *refusal.headers])
        return self.reply

    def latency_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 2)
