"""``subscriptions/listen`` (2026-07-28): a stateless agent's stream of notifications.

The era has no standing GET stream: an agent opts in to ``*/list_changed`` and resource
updates with one request whose response is the stream. Behind it the gateway keeps a
session of its own, never named to the agent, so that everything that already decides
who hears what (``announce_changes`` for listings, ``relay`` for updates of subscribed
URIs, re-checked per update against live grants) serves it unchanged. The session ends
when the agent hangs up; its subscriptions are let go like any ended session's.

A URI the agent may not read is left out of what is acknowledged, exactly as one the
server cannot subscribe to: the acknowledgement never says which of the two it was.
"""

from __future__ import annotations

import json
import time
from typing import Any

from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY as SUBSCRIPTION_ID

from console.gateway import jsonrpc as rpc
from console.gateway.exchange import Exchange, Refused
from console.gateway.forwarder import UpstreamFailed
from console.gateway.sessions import AgentSession, SessionStore
from console.gateway.shared import MAX_SUBSCRIPTIONS, SharedUpstream

KINDS = {"toolsListChanged": b"notifications/tools/list_changed",
         "promptsListChanged": b"notifications/prompts/list_changed",
         "resourcesListChanged": b"notifications/resources/list_changed"}
_UPDATED = b"notifications/resources/updated"
_URI_LIMIT = 8192


def wanted(params: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(list kinds, URIs) a listen request asks for, or ``Refused`` for a malformed one."""
    notifications = params.get("notifications")
    if not isinstance(notifications, dict):
        raise Refused("params.notifications must be an object", code=rpc.INVALID_PARAMS, status=400,
                      reason="invalid-params")
    uris = notifications.get("resourceSubscriptions") or []
    if not isinstance(uris, list) or not all(isinstance(u, str) and 0 < len(u) <= _URI_LIMIT for u in uris):
        raise Refused("params.notifications.resourceSubscriptions must be a list of URIs", code=rpc.INVALID_PARAMS,
                      status=400, reason="invalid-params")
    if len(set(uris)) > MAX_SUBSCRIPTIONS:
        raise Refused(f"one stream listens to at most {MAX_SUBSCRIPTIONS} resources", code=rpc.INVALID_PARAMS,
                      status=400, reason="too-many-subscriptions")
    return [kind for kind in KINDS if notifications.get(kind) is True], list(dict.fromkeys(uris))


class Listener:
    def __init__(self, sessions: SessionStore, shared: SharedUpstream) -> None:
        self.sessions = sessions
        self.shared = shared
        self._streams: dict[AgentSession, tuple[rpc.JsonId, frozenset[bytes]]] = {}
        """Listen session -> (its subscription id, the list kinds it wants)."""

    async def open(self, x: Exchange) -> None:
        """Open the stream's session and subscribe what the agent may read; ``x.listening``
        is the session and ``x.detail`` says what was honored."""
        kinds, uris = wanted(x.params)
        identity = x.identity
        assert identity is not None and x.protocol is not None
        session, evicted = self.sessions.create(identity.agent_id, x.endpoint, x.protocol, identity.on_behalf)
        session.visible.update(x.snapshot.surface.exposed(identity.agent_id, x.endpoint, time.time()))
        x.target = f"session:{x.endpoint or '/mcp'}"
        honored = [uri for uri in uris if await self._subscribe(x, session, uri)]
        filter_: dict[str, Any] = {kind: True for kind in kinds}
        if honored:
            filter_["resourceSubscriptions"] = honored
        self._streams[session] = (x.request_id, frozenset(KINDS[k] for k in kinds))
        x.listening = session
        x.detail.update({"listen": kinds, "subscribed": len(honored), "refused": len(uris) - len(honored)})
        if evicted:
            x.detail["evicted"] = len(evicted)
        session.notify(rpc.notification("notifications/subscriptions/acknowledged",
                                        {"notifications": filter_, "_meta": {SUBSCRIPTION_ID: x.request_id}}))

    async def _subscribe(self, x: Exchange, session: AgentSession, uri: str) -> bool:
        item, decision = x.snapshot.surface.resolve_uri(x.identity.agent_id, x.endpoint, uri, time.time())  # type: ignore[union-attr]
        if not decision.allowed or item is None:
            return False
        one = Exchange(x.endpoint, x.headers, x.snapshot, identity=x.identity, session=session, params={"uri": uri},
                       item=item)
        try:
            await self.shared.subscribe(one)
        except (Refused, UpstreamFailed):
            return False
        return True

    def close(self, session: AgentSession) -> None:
        self._streams.pop(session, None)
        self.sessions.end(session.id)

    def framed(self, session: AgentSession, message: bytes) -> bytes | None:
        """A notification of the listen session as its stream carries it (tagged with the
        subscription), or None when the agent did not ask for that kind."""
        subscription, kinds = self._streams[session]
        if b"subscriptions/acknowledged" not in message and _UPDATED not in message \
                and not any(kind in message for kind in kinds):
            return None
        decoded = json.loads(message)
        params = decoded.setdefault("params", {})
        params["_meta"] = {**(params.get("_meta") or {}), SUBSCRIPTION_ID: subscription}
        return rpc.dumps(decoded)
