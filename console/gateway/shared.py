"""What many agents share in one upstream session: its log level and its subscriptions.

A server has one session with the gateway, so an agent's ``logging/setLevel`` or
``resources/subscribe`` cannot simply be passed on: one agent would change what every
other one gets. The gateway keeps each session's own wish and sets upstream what they
add up to:

- the log level of a server is the most verbose level any session entitled to it asked
  for (``emergency`` once none asks: a server cannot be told to stop logging, only to
  say less). Each session still only gets what it asked for (``relay``).
- a URI is subscribed upstream while at least one session is subscribed to it, and
  unsubscribed when the last one leaves (or its session ends).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from console.gateway import jsonrpc as rpc
from console.gateway.exchange import Exchange, Refused
from console.gateway.forwarder import UpstreamFailed
from mcp_types import LOG_LEVEL_META_KEY

from console.gateway.relay import LEVELS, LogListener, Relay, severity, uses_server
from console.gateway.sessions import SessionStore
from console.gateway.snapshot import Snapshots
from console.gateway.upstreams import Upstream, Upstreams

log = logging.getLogger(__name__)
QUIETEST = LEVELS[-1]
MAX_SUBSCRIPTIONS = 256
"""Per session: a template grant matches endless URIs, and each one costs the gateway
memory and the server a subscription."""


class SharedUpstream:
    def __init__(self, sessions: SessionStore, snapshots: Snapshots, upstreams: Upstreams, relay: Relay,
                 timeout: float) -> None:
        self.sessions, self.snapshots, self.upstreams, self.relay = sessions, snapshots, upstreams, relay
        self.timeout = timeout
        self._subscribed_on: dict[tuple[str, str], Upstream] = {}
        """(server, URI) -> the upstream session that holds the subscription: a restarted
        server starts a new one, which knows nothing of it."""

    def can_subscribe(self, endpoint: str | None) -> bool:
        """Whether ``resources/subscribe`` works on the endpoint (its server, or any, supports it)."""
        surface = self.snapshots.current.surface
        scope = [surface.server_ids.get(endpoint)] if endpoint else list(surface.server_names)
        return any((u := self.upstreams.live(sid)) is not None and u.can_subscribe for sid in scope if sid)

    # -- logging -----------------------------------------------------------------------

    async def set_level(self, x: Exchange) -> dict[str, Any]:
        session = x.session
        assert session is not None and x.identity is not None
        session.log_level = x.params["level"]
        surface = x.snapshot.surface
        now = time.time()
        scope = [surface.server_ids.get(x.endpoint)] if x.endpoint else list(surface.server_names)
        x.target = f"session:{x.endpoint or '/mcp'}"
        x.detail["level"] = session.log_level
        upstream: dict[str, str] = {}
        for server_id in scope:
            if server_id and uses_server(self.snapshots, x.identity.agent_id, server_id, now):
                name = surface.server_names[server_id]
                try:
                    level = await self._settle(server_id, now)
                except (UpstreamFailed, Refused) as exc:
                    # The session's level holds whatever one server says: it filters what
                    # the gateway relays, and the next setLevel tries again.
                    x.detail.setdefault("upstream_failed", {})[name] = str(exc)[:200]
                    continue
                if level is not None:
                    upstream[name] = level
        x.detail["upstream"] = upstream
        return {}

    def wanted(self, server_id: str, now: float) -> str:
        """The most verbose level a session entitled to the server (or a stateless request
        in flight there) asked for."""
        name = self.snapshots.current.surface.server_names.get(server_id)
        rank = severity(QUIETEST)
        for session in self.sessions:
            if session.log_level is not None and session.endpoint in (None, name) \
                    and severity(session.log_level) < rank \
                    and uses_server(self.snapshots, session.agent_id, server_id, now):
                rank = severity(session.log_level)
        for listener in self.relay.listening(server_id):
            rank = min(rank, severity(listener.level))
        return LEVELS[rank]

    async def hear_logs(self, x: Exchange, upstream: Upstream,
                        params: dict[str, Any]) -> tuple[dict[str, Any], LogListener | None]:
        """The call's params, and its listener, for the log messages its agent asked for.

        A stateless request asks in its own ``_meta`` and hears them on its response
        stream while it runs; a session asked with ``logging/setLevel``. A server of the
        handshake era is set to the most verbose level anyone wants; one of the new era
        logs per request, so the level goes along with the call.
        """
        level = _requested_level(x)
        if level is None:
            return params, None
        assert x.item is not None and x.identity is not None
        listener = None
        if x.session is None and x.events is not None:
            listener = LogListener(x.identity.agent_id, x.endpoint, level, x.events)
            self.relay.listen(x.item.server_id, listener)
            x.detail["log_level"] = level
        if upstream.modern:
            return {**params, "_meta": {**(params.get("_meta") or {}), LOG_LEVEL_META_KEY: level}}, listener
        if listener is not None:
            try:
                await self._settle(x.item.server_id, time.time())
            except (UpstreamFailed, Refused) as exc:  # the call goes on; it may hear less
                x.detail["log_level_failed"] = str(exc)[:200]
        return params, listener

    async def _settle(self, server_id: str, now: float) -> str | None:
        """Set the server's level to what its sessions want, if it differs; the level now."""
        upstream = self.upstreams.live(server_id)
        if upstream is None or not upstream.can_log:
            return None
        level = self.wanted(server_id, now)
        if level == upstream.log_level or (upstream.log_level is None and level == QUIETEST):
            return upstream.log_level  # nothing to change (nobody asked this session for anything yet)
        await self._ask(upstream, "logging/setLevel", {"level": level})
        upstream.log_level = level
        return level

    # -- subscriptions -----------------------------------------------------------------

    async def subscribe(self, x: Exchange) -> dict[str, Any]:
        assert x.item is not None and x.session is not None
        uri = x.params["uri"]
        key = (x.item.server_id, uri)
        if key not in x.session.subscriptions and len(x.session.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise Refused(f"this session holds {MAX_SUBSCRIPTIONS} subscriptions, the most it may; "
                          f"unsubscribe from some first", code=rpc.INVALID_REQUEST, reason="too-many-subscriptions")
        if self.relay.subscribe(x.item.server_id, uri, x.session):
            try:
                upstream = await self.upstreams.ready(x.item.server_id)
                await self._hold(upstream, uri)
            except (UpstreamFailed, Refused):
                self.relay.unsubscribe(x.item.server_id, uri, x.session)
                raise
            self._subscribed_on[(x.item.server_id, uri)] = upstream
        x.session.subscriptions.add(key)
        x.detail["subscribers"] = self.relay.subscribed(x.item.server_id, uri)
        return {}

    async def unsubscribe(self, x: Exchange) -> dict[str, Any]:
        """Only the session's own subscriptions: anything else is already "not subscribed"."""
        assert x.session is not None
        uri = x.params["uri"]
        x.target = f"resource:{str(uri)[:200]}"
        for server_id, held in list(x.session.subscriptions):
            if held == uri:
                x.session.subscriptions.discard((server_id, uri))
                if self.relay.unsubscribe(server_id, uri, x.session):
                    await self._leave(server_id, uri)
        return {}

    async def tidy(self) -> None:
        """Subscriptions of ended sessions, log levels nobody wants any more, and both
        again on a server's new session (after a restart)."""
        for server_id, uri in self.relay.stale_subscriptions():
            await self._leave(server_id, uri)
        for key in self.relay.subscriptions():
            upstream = self.upstreams.live(key[0])
            if upstream is not None and upstream.verified.is_set() and self._subscribed_on.get(key) is not upstream:
                try:
                    await self._hold(upstream, key[1])
                    self._subscribed_on[key] = upstream
                except (UpstreamFailed, Refused) as exc:
                    log.warning("subscribing %s to %s again failed: %s", key[0], key[1], exc)
        now = time.time()
        asked = any(session.log_level is not None for session in self.sessions)
        for server_id in list(self.snapshots.current.surface.server_names):
            upstream = self.upstreams.live(server_id)
            if upstream is not None and upstream.verified.is_set() and (upstream.log_level or asked):
                try:
                    await self._settle(server_id, now)
                except (UpstreamFailed, Refused) as exc:
                    log.warning("setting the log level of %s failed: %s", server_id, exc)

    async def _leave(self, server_id: str, uri: str) -> None:
        self._subscribed_on.pop((server_id, uri), None)
        upstream = self.upstreams.live(server_id)
        if upstream is not None and upstream.listen is not None:
            upstream.listen.want(self._held(server_id))
        elif upstream is not None:
            try:
                await self._ask(upstream, "resources/unsubscribe", {"uri": uri})
            except (UpstreamFailed, Refused) as exc:  # the agent is done with it either way
                log.info("unsubscribing %s from %s failed: %s", server_id, uri, exc)

    async def _hold(self, upstream: Upstream, uri: str) -> None:
        """Subscribe the server to the URI: a request of its own in the handshake era; in
        the 2026-07-28 era, the gateway's listen stream with it asks for it too."""
        if upstream.listen is not None:
            upstream.listen.want(self._held(upstream.server_id))
        else:
            await self._ask(upstream, "resources/subscribe", {"uri": uri})

    def _held(self, server_id: str) -> set[str]:
        return {uri for held_by, uri in self.relay.subscriptions() if held_by == server_id}

    async def _ask(self, upstream: Upstream, method: str, params: dict[str, Any]) -> None:
        response = await upstream.forwarder.request(method, params, self.timeout)
        error = (response.decoded or json.loads(response.line)).get("error")
        if isinstance(error, dict):
            raise Refused(f"the server refused {method}: {str(error.get('message'))[:200]}",
                          code=rpc.SERVER_UNAVAILABLE, reason="upstream-refused", decision="error")


def _requested_level(x: Exchange) -> str | None:
    """The level the request's agent wants log messages at (None: it wants none)."""
    if x.session is not None:
        return x.session.log_level
    meta = x.params.get("_meta")
    level = meta.get(LOG_LEVEL_META_KEY) if isinstance(meta, dict) else None
    if level is not None and level not in LEVELS:
        raise Refused(f"_meta[{LOG_LEVEL_META_KEY!r}] must be one of {', '.join(LEVELS)}",
                      code=rpc.INVALID_PARAMS, status=400, reason="invalid-log-level")
    return level
