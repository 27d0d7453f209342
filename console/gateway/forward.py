"""The forward step: an authorized request goes to its server's shared session, and
what comes back is the agent's.

What the step arranges around the one upstream request: it waits (bounded) for a server
being verified again and decides again on what that found; the agent's progress token
is swapped for the gateway's (``relay``); log messages the request asked for are heard
(``shared``); a server's requests during the call go to the agent whose call it is
(``client_requests``), and for a stateless agent become an input-required result of the
gateway's (``mrtr``); a server of the 2026-07-28 era that asks for input in its result
has it asked of the agent and the call sent again (``upstream_input``). The result goes
back with the agent's id, if it is not over the gateway's cap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from console.config import GatewaySettings
from console.gateway import era2026, upstream_input
from console.gateway import jsonrpc as rpc
from console.gateway.client_requests import AgentAsks
from console.gateway.exchange import JSON, Exchange, Refused, Reply
from console.gateway.forwarder import Cancelled, RawResponse, UpstreamFailed
from console.gateway.methods import Method
from console.gateway.mrtr import FollowingSink, InputRequests, InputRequired
from console.gateway.relay import Relay
from console.gateway.sessions import AgentSession
from console.gateway.shared import SharedUpstream
from console.gateway.snapshot import Snapshots
from console.gateway.upstreams import Upstreams


class Forwarding:
    def __init__(self, *, snapshots: Snapshots, upstreams: Upstreams, relay: Relay, shared: SharedUpstream,
                 asks: AgentAsks, input_requests: InputRequests, settings: GatewaySettings, call_timeout: float,
                 decide: Callable[[Exchange, Method], None]) -> None:
        self.snapshots, self.upstreams, self.relay, self.shared = snapshots, upstreams, relay, shared
        self.asks, self.input_requests = asks, input_requests
        self.settings, self.call_timeout = settings, call_timeout
        self.decide = decide
        """Authorize and check the request again (the pipeline's steps), on a new snapshot."""

    async def forward(self, x: Exchange, method: Method) -> None:
        assert x.item is not None and x.upstream is not None
        try:
            upstream = await self.upstreams.ready(x.item.server_id)
        except UpstreamFailed as exc:
            raise unavailable(x, exc) from None
        if upstream.verified_generation > x.snapshot.generation:
            # The server was re-verified while this request waited: decide again on what
            # that verification found (a changed definition is blocked now).
            x.snapshot = self.snapshots.current
            self.decide(x, method)
        forwarder = upstream.forwarder
        session = x.session
        request_id = x.request_id

        def track(number: int) -> None:
            if session is not None and request_id is not None:
                session.in_flight[request_id] = (forwarder, number)

        name, params = x.upstream
        if session is None and x.events is not None:
            x.events = FollowingSink(x.events)  # the call may outlive this request (``mrtr``)
        params, listener = await self.shared.hear_logs(x, upstream, params)
        progress = self.progress(x, params)
        server_id = x.item.server_id
        # A stateless call has no stream to carry a server's request: it becomes an
        # input-required result (``mrtr``), asked of a stand-in for the session.
        asker, asked = (session, None) if session is not None else (era2026.stand_in(x), asyncio.Queue[bytes]())
        asking = self.asks.call_started(server_id, asker, x.events if asked is None else asked.put_nowait,
                                        progress and progress["_meta"]["progressToken"]) \
            if self.asks.may_ask(server_id) else None

        async def call() -> RawResponse:
            sent = progress or params
            try:
                response = await forwarder.request(name, sent, self.call_timeout, track)
                if not upstream.modern:
                    return response
                return await upstream_input.complete(
                    x.item.server, response,  # type: ignore[union-attr]
                    lambda again: forwarder.request(name, {**sent, **again}, self.call_timeout, track),
                    lambda kind, asked_for: self.asks.ask(server_id, kind, asked_for, asking))
            finally:
                self.asks.call_ended(server_id, asking)
                if session is not None:
                    session.in_flight.pop(request_id, None)  # type: ignore[arg-type]
                if progress is not None:
                    self.relay.close_call(server_id, progress["_meta"]["progressToken"])
                if listener is not None:
                    self.relay.unlisten(server_id, listener)

        try:
            parkable = asked is not None and asking is not None
            response = await (self.input_requests.call(x, asker, asked, call()) if parkable else call())  # type: ignore[arg-type]
        except UpstreamFailed as exc:
            raise unavailable(x, exc) from None
        except InputRequired as needed:
            x.reply = Reply(200, rpc.result(request_id, needed.result), JSON)
            return
        self.answered(x, response)

    async def resume(self, x: Exchange) -> None:
        """A stateless call's retry with the agent's input: the call it continues answers."""
        def answer(session: AgentSession, message: dict[str, Any], size: int) -> str | None:
            return self.asks.answered(session, message, size, self.settings.max_result_bytes)

        try:
            response = await self.input_requests.resume(x, answer)
        except UpstreamFailed as exc:
            raise unavailable(x, exc) from None
        except InputRequired as needed:
            x.reply = Reply(200, rpc.result(x.request_id, needed.result), JSON)
            return
        self.answered(x, response)

    def answered(self, x: Exchange, response: RawResponse) -> None:
        request_id = x.request_id
        line = response.for_caller(request_id)
        cap = self.settings.max_result_bytes
        if len(line) > cap:
            raise Refused(f"the result is too large ({len(line)} bytes; the gateway's cap is {cap}); ask for less",
                          code=rpc.INTERNAL_ERROR, reason="result-too-large", decision="error")
        x.detail["result_bytes"] = len(line)
        x.reply = Reply(200, line, JSON)

    def progress(self, x: Exchange, params: dict[str, Any]) -> dict[str, Any] | None:
        """The params with a gateway progress token in place of the agent's, when the
        agent asked for progress and can be sent it (None otherwise)."""
        meta = x.params.get("_meta")
        token = meta.get("progressToken") if isinstance(meta, dict) else None
        if token is None or x.events is None:
            return None
        assert x.item is not None
        upstream_token = self.relay.open_call(x.item.server_id, token, x.events)
        x.detail["progress"] = True
        return {**params, "_meta": {**(params.get("_meta") or {}), "progressToken": upstream_token}}


def unavailable(x: Exchange, exc: Exception) -> Refused:
    server = x.item.server if x.item else "?"
    return Refused(f"server {server} did not complete the call: {exc}; try again",
                   code=rpc.SERVER_UNAVAILABLE, reason="cancelled" if isinstance(exc, Cancelled) else
                   "upstream-failed", decision="error")
