"""Every agent request through the same steps, with exactly one audit record each.

    authenticate → parse → session → authorize → check → hold → forward → mask → record

Each step is a small method with a narrow view: the request's ``Exchange`` plus the one
collaborator it needs (the snapshots, the sessions, the upstreams, the audit sink). The
record step runs in a ``finally``: whatever a step decided — allow, deny, error, or the
agent hanging up mid-call — the request leaves one record with the reason.

What agents share upstream (a server's log level, its subscriptions) is decided by
``shared.py``; what servers say besides answers (progress, log messages, resource updates)
is routed by ``relay.py`` to the sessions entitled to it, and counted rather than recorded
one by one, like the refusals below.

Unauthenticated refusals are not recorded one by one (anyone who can reach the port
could otherwise fill the disk and so switch the audit off); they are counted and
summarised in one record per interval.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from console.audit import AuditEvent
from console.config import GatewaySettings
from console.gateway import jsonrpc as rpc
from console.gateway import era2026, validate
from console.gateway.approvals import Approvals
from console.gateway.audit_writer import counted
from console.gateway.auth import Identity, identify
from console.gateway.client_requests import AgentAsks
from console.gateway.exchange import JSON, Exchange, Refused, Reply
from console.gateway.forwarder import UpstreamFailed
from console.gateway.methods import METHODS, UNKNOWN, Denied, Method, initialize_result, negotiate
from console.gateway.methods import SUPPORTED_VERSIONS
from console.gateway.listen import Listener
from console.gateway.forward import Forwarding, unavailable
from console.gateway.mrtr import InputRequests
from console.gateway.relay import Relay
from console.gateway.sessions import AgentSession, SessionStore
from console.gateway.shared import SharedUpstream
from console.gateway.snapshot import Snapshots
from console.gateway.upstreams import Upstreams
from console.policy import Reason
from console.services.hints import explain
from console.trust.redact import argument_digest

ACCEPTED = Reply(202)
BodyReader = Callable[[], Awaitable[bytes]]
IDENTITY_MEMO = 4096
INVALID = Method("rpc.invalid")
OPEN = Method("session.open")
CLOSE = Method("session.close")
STREAM = Method("session.stream")


class AuditSink(Protocol):
    failure: str | None

    def record(self, event: AuditEvent) -> None: ...


class Pipeline:
    def __init__(self, *, snapshots: Snapshots, sessions: SessionStore, upstreams: Upstreams, audit: AuditSink,
                 owner_key: bytes, settings: GatewaySettings, call_timeout: float,
                 instructions: Callable[[str | None], str], relay: Relay, shared: SharedUpstream,
                 asks: AgentAsks, approvals: Approvals | None = None) -> None:
        self.snapshots = snapshots
        self.sessions = sessions
        self.upstreams = upstreams
        self.asks = asks
        self.approvals = approvals
        self.audit = audit
        self.owner_key = owner_key
        self.settings = settings
        self.call_timeout = call_timeout
        self.instructions = instructions
        self.relay = relay
        self.shared = shared
        self.modern = era2026.methods(instructions, shared.can_subscribe)
        self.listener = Listener(sessions, shared)
        self.input_requests = InputRequests(keep_seconds=call_timeout)
        self.forwarding = Forwarding(snapshots=snapshots, upstreams=upstreams, relay=relay, shared=shared, asks=asks,
                                     input_requests=self.input_requests, settings=settings,
                                     call_timeout=call_timeout, decide=self._decide_again)
        self.unauthenticated: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._streams: Counter[str] = Counter()
        self._identities: dict[str, Identity] = {}
        self._identities_of: object = None

    def exchange(self, endpoint: str | None, headers: dict[bytes, bytes]) -> Exchange:
        return Exchange(endpoint, headers, self.snapshots.current)

    # -- the POST of one JSON-RPC message ----------------------------------------------

    async def post(self, x: Exchange, read_body: BodyReader) -> Reply:
        if not await self._authenticated(x):
            return x.reply  # type: ignore[return-value]
        method = INVALID
        recorded = True
        admitted = False
        try:
            self._parse(x, await read_body())
            if x.method == "initialize":
                method = OPEN
                return self._initialize(x)
            if era2026.is_modern(x):
                era2026.admit(x)  # a stateless request: its envelope instead of a session
            else:
                self._find_session(x)
            if not x.is_request:
                recorded = False  # notifications and replies to us are not decisions
                self._notification(x)
                x.reply = ACCEPTED
                return x.reply
            method = (self.modern if x.protocol else METHODS).get(x.method, UNKNOWN)
            if method is UNKNOWN:
                raise Refused(f"method {_shown(x.method)!r} is not supported", code=rpc.METHOD_NOT_FOUND,
                              reason="unsupported-method", decision="error")
            self._admit(x)
            admitted = True
            self._check_shape(x)
            if method.forwarded:
                await self._authorize_surely(x, method)
                self._check_request(x, method)
                if method.shared:
                    await self._share(x, method)
                elif x.protocol is not None and "requestState" in x.params:
                    await self._resume(x)
                else:
                    await self._hold(x)
                    await self._forward(x, method)
            elif method.shared:
                self._check_audit(x)
                await self._share(x, method)
            elif method is era2026.LISTEN:
                await self._listen(x)
            else:
                self._check_audit(x)
                x.reply = Reply(200, rpc.result(x.request_id, method.answer(x)), JSON)  # type: ignore[misc]
            self._mask(x)
            return x.reply
        except Refused as refusal:
            return x.refuse(refusal)
        except asyncio.CancelledError:
            x.decision = "error"
            x.detail["reason"] = "client-disconnected"
            raise
        finally:
            if x.protocol is not None:
                era2026.finish(x, forwarded=method.forwarded)  # the same Reply object goes back
            if admitted:
                self._release(x)
            if recorded:
                self._record(x, method)

    async def delete(self, x: Exchange) -> Reply:
        """The client ends its session."""
        if not await self._authenticated(x):
            return x.reply  # type: ignore[return-value]
        try:
            self._find_session(x)
            self.end_session(x.session, "client ended it", record=False)  # type: ignore[arg-type]
            x.detail["why"] = "client ended it"
            x.reply = Reply(200)
            return x.reply
        except Refused as refusal:
            return x.refuse(refusal)
        finally:
            self._record(x, CLOSE)

    async def stream(self, x: Exchange) -> AgentSession | None:
        """Open the session's event stream (GET); None when refused (``x.reply`` says why)."""
        if not await self._authenticated(x):
            return None
        try:
            self._find_session(x)
            self._count_stream(x)
            return x.session
        except Refused as refusal:
            x.refuse(refusal)
            return None
        finally:
            self._record(x, STREAM)

    def _count_stream(self, x: Exchange) -> None:
        agent = x.identity.agent_id  # type: ignore[union-attr]
        if self._streams[agent] >= self.settings.max_streams_per_agent:
            raise Refused(f"too many open event streams for this agent "
                          f"(at most {self.settings.max_streams_per_agent}); close one first",
                          status=429, reason="too-many-streams")
        self._streams[agent] += 1

    def listen_closed(self, session: AgentSession) -> None:
        self.listener.close(session)
        self.stream_closed(session)

    def stream_closed(self, session: AgentSession) -> None:
        self._streams[session.agent_id] -= 1
        if self._streams[session.agent_id] <= 0:
            del self._streams[session.agent_id]

    async def _listen(self, x: Exchange) -> None:
        """``subscriptions/listen``: the reply is the stream the HTTP layer runs next."""
        if b"text/event-stream" not in x.headers.get(b"accept", b""):
            raise Refused("subscriptions/listen answers with an event stream: accept text/event-stream",
                          status=406, reason="bad-accept")
        self._check_audit(x)
        self._count_stream(x)
        try:
            await self.listener.open(x)
        except BaseException:
            self._streams[x.identity.agent_id] -= 1  # type: ignore[union-attr]
            raise
        x.reply = Reply(200)

    # -- authenticate ------------------------------------------------------------------

    async def _authenticated(self, x: Exchange) -> bool:
        if await self.snapshots.catch_up():
            # The vault changed since the last poll: a revoke, a disabled agent or a new
            # token counts from the very next request, not a poll interval later.
            x.snapshot = self.snapshots.current
        authorization = x.headers.get(b"authorization")
        credential = authorization.decode("latin-1") if authorization else None
        x.identity = self._identify(credential, x)
        if x.identity is None:
            self.unauthenticated["missing-token" if not credential else "invalid-token"] += 1
            x.refuse(Refused("missing or invalid bearer token", status=401, reason="unauthenticated",
                             headers=[(b"www-authenticate", b'Bearer realm="toolbox-console"')]))
            return False
        return True

    def _identify(self, credential: str | None, x: Exchange) -> Identity | None:
        """``identify``, remembered per snapshot for agent tokens (owner tokens expire, and
        a miss is not remembered, so a flood of bad tokens cannot fill the memo)."""
        if self._identities_of is not x.snapshot:
            self._identities_of, self._identities = x.snapshot, {}
        found = self._identities.get(credential) if credential else None
        if found is None:
            found = identify(credential, x.snapshot.surface.policy, self.owner_key, time.time())
            if found is not None and not found.on_behalf and len(self._identities) < IDENTITY_MEMO:
                self._identities[credential] = found  # type: ignore[index]
        return found

    # -- parse -------------------------------------------------------------------------

    def _parse(self, x: Exchange, body: bytes) -> None:
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise Refused("the body is not valid JSON (or nested too deeply)", status=400, code=rpc.PARSE_ERROR,
                          reason="malformed-json") from None
        if isinstance(message, list):
            raise Refused("JSON-RPC batches are not supported: send one message per request", status=400,
                          reason="batch")
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            raise Refused("not a JSON-RPC 2.0 message", status=400, reason="not-json-rpc")
        if rpc.lone_surrogate(body, message):
            raise Refused("the message holds a lone UTF-16 surrogate (invalid Unicode); send valid text",
                          status=400, reason="invalid-unicode")
        if "id" in message and not rpc.is_valid_id(message["id"]):
            raise Refused("a JSON-RPC id must be a string or an integer", status=400, reason="bad-id")
        x.body, x.message = body, message
        x.request_id = message.get("id")
        method = message.get("method")
        x.method = method if isinstance(method, str) else ""
        params = message.get("params")
        if params is not None and not isinstance(params, dict):
            raise Refused("params must be an object", code=rpc.INVALID_PARAMS, reason="invalid-params")
        x.params = params or {}

    # -- session -----------------------------------------------------------------------

    def _initialize(self, x: Exchange) -> Reply:
        x.target = f"session:{x.endpoint or '/mcp'}"
        if "id" not in x.message:  # type: ignore[operator]
            raise Refused("initialize must be a request with an id", status=400, reason="bad-initialize")
        self._check_shape(x)
        self._check_audit(x)
        identity = x.identity
        assert identity is not None
        version = negotiate(x.params.get("protocolVersion"))
        session, evicted = self.sessions.create(identity.agent_id, x.endpoint, version, identity.on_behalf)
        x.session = session
        capabilities = x.params.get("capabilities")
        session.capabilities = capabilities if isinstance(capabilities, dict) else {}
        client = x.params.get("clientInfo") or {}
        x.detail.update({"protocol": version, "on_behalf": identity.on_behalf,
                         "client": {k: str(client[k])[:100] for k in ("name", "version") if k in client}})
        if evicted:
            x.detail["evicted"] = len(evicted)
        body = rpc.result(x.request_id, initialize_result(version, self.instructions(x.endpoint),
                                                          subscribe=self.shared.can_subscribe(x.endpoint)))
        x.reply = Reply(200, body, [*JSON, (b"mcp-session-id", session.id.encode())])
        return x.reply

    def _find_session(self, x: Exchange) -> None:
        x.target = x.target or f"session:{x.endpoint or '/mcp'}"
        session_id = x.headers.get(b"mcp-session-id")
        if not session_id:
            raise Refused("missing Mcp-Session-Id header: send initialize first", status=400, reason="no-session")
        session = self.sessions.get(session_id.decode("latin-1"), x.identity.agent_id)  # type: ignore[union-attr]
        if session is None or session.endpoint != x.endpoint:
            raise Refused("session not found: it ended or never existed; initialize a new one", status=404,
                          reason="unknown-session")
        version = x.headers.get(b"mcp-protocol-version")
        if version is not None and version.decode("latin-1") not in SUPPORTED_VERSIONS:
            raise Refused(f"unsupported MCP-Protocol-Version {version.decode('latin-1')[:40]!r}; "
                          f"supported: {', '.join(SUPPORTED_VERSIONS)}", status=400, reason="bad-protocol-version")
        x.session = session

    def end_session(self, session: AgentSession, why: str, *, record: bool = True) -> None:
        if self.sessions.end(session.id) is not None and record:
            self.session_ended(session, why)

    def session_ended(self, session: AgentSession, why: str) -> None:
        """Record a session the gateway ended by itself (idle, stopping)."""
        self.audit.record(AuditEvent(self._actor(session.on_behalf, session.agent_id), "session.close",
                                     f"session:{session.endpoint or '/mcp'}", "ok",
                                     self._agent_name(session.agent_id), {"why": why}))

    def _notification(self, x: Exchange) -> None:
        if not x.method and x.session is not None:
            self._answer(x)
        elif x.method == "notifications/cancelled" and x.session is not None:
            entry = x.session.in_flight.pop(x.params.get("requestId"), None)  # type: ignore[union-attr,arg-type]
            if entry is not None:
                forwarder, number = entry
                asyncio.get_running_loop().create_task(forwarder.cancel(number, "the agent cancelled"))  # type: ignore[attr-defined]
            elif self.approvals is not None:  # a call still waiting for the owner
                self.approvals.cancelled(x.session.id, x.params.get("requestId"))

    def _answer(self, x: Exchange) -> None:
        """An agent's response to a request the gateway relayed to it (``client_requests``)."""
        why = self.asks.answered(x.session, x.message, len(x.body), self.settings.max_result_bytes)  # type: ignore[arg-type]
        if why is not None:
            raise Refused(why, status=400, reason="unknown-answer")

    def _admit(self, x: Exchange) -> None:
        agent = x.identity.agent_id  # type: ignore[union-attr]
        if self._in_flight[agent] >= self.settings.max_inflight_per_agent:
            raise Refused(f"too many requests in progress for this agent (at most "
                          f"{self.settings.max_inflight_per_agent}); wait for some to finish", status=429,
                          reason="too-many-requests", headers=[(b"retry-after", b"1")])
        self._in_flight[agent] += 1

    def _release(self, x: Exchange) -> None:
        agent = x.identity.agent_id  # type: ignore[union-attr]
        self._in_flight[agent] -= 1
        if self._in_flight[agent] <= 0:
            del self._in_flight[agent]

    # -- authorize ---------------------------------------------------------------------

    @staticmethod
    def _authorize(x: Exchange, method: Method) -> None:
        assert method.authorize is not None
        method.authorize(x)

    async def _authorize_surely(self, x: Exchange, method: Method) -> None:
        """Authorize; a refusal gets a second look before it stands. The vault may have
        changed since this request's snapshot was taken (a grant made while its body was
        on the way): one stat says so, and the request is decided again on the new policy.

        A refusal because the item's server is not running says so: only an item the agent
        is granted and may use gets that far, so this tells it nothing it may not know, and
        "not granted" would send it (and whoever reads its log) the wrong way."""
        try:
            self._authorize(x, method)
            return
        except Denied as denied:
            refusal = denied
        if await self.snapshots.catch_up() or self.snapshots.current is not x.snapshot:
            x.snapshot = self.snapshots.current
            try:
                self._authorize(x, method)
                return
            except Denied as again:
                refusal = again
        item = refusal.item
        if refusal.policy_decision.reason is not Reason.SERVER_NOT_RUNNING or item is None:
            raise refusal
        if item.server_id in x.snapshot.surface.policy.meant_to_run:
            raise Refused(f"server {item.server} is not running right now; try again in a moment",
                          code=rpc.SERVER_UNAVAILABLE, reason=refusal.reason)
        raise Refused(f"server {item.server} is stopped; its owner can start it", code=rpc.SERVER_UNAVAILABLE,
                      reason=refusal.reason)

    # -- check the request -------------------------------------------------------------

    def _check_shape(self, x: Exchange) -> None:
        problem = validate.problem(x.method, x.params)
        if problem is not None:
            raise Refused(f"invalid {x.method} request: {problem}", code=rpc.INVALID_PARAMS, reason="invalid-params")

    def _check_audit(self, x: Exchange) -> None:
        if self.audit.failure is not None and x.method != "ping":
            raise Refused(f"the gateway cannot record this request in its audit log, so it refuses it: "
                          f"{self.audit.failure}", code=rpc.SERVER_UNAVAILABLE, reason="audit-unavailable",
                          decision="error")

    def _check_request(self, x: Exchange, method: Method) -> None:
        self._check_audit(x)
        if x.protocol is not None:
            era2026.check_params(x)
        redactor = x.snapshot.redactor
        if method.arguments is not None:
            x.detail["arguments"] = argument_digest(x.params.get(method.arguments) or {}, redactor)
        # The whole message as sent, read as JSON whatever its escaping: params, _meta, keys.
        _masked, leaked = redactor.mask_json(x.body)
        if leaked:
            x.detail["found"] = leaked
            raise Refused("the call was blocked: its request carries a credential; the owner was notified",
                          code=rpc.CALL_BLOCKED, reason="secret-in-request")

    # -- hold for the owner ------------------------------------------------------------

    async def _hold(self, x: Exchange) -> None:
        """A call under an ask grant waits here for the owner's decision (``approvals``)."""
        if self.approvals is not None and self.approvals.asks(x):
            await self.approvals.hold(x)

    # -- forward (``forward``) -----------------------------------------------------------

    def _decide_again(self, x: Exchange, method: Method) -> None:
        self._authorize(x, method)
        self._check_request(x, method)

    async def _forward(self, x: Exchange, method: Method) -> None:
        await self.forwarding.forward(x, method)

    async def _resume(self, x: Exchange) -> None:
        await self.forwarding.resume(x)

    async def _share(self, x: Exchange, method: Method) -> None:
        """A request about what agents share upstream (``shared``)."""
        try:
            answer = await getattr(self.shared, method.shared)(x)  # type: ignore[arg-type]
        except UpstreamFailed as exc:
            raise unavailable(x, exc) from None
        x.reply = Reply(200, rpc.result(x.request_id, answer), JSON)

    # -- mask --------------------------------------------------------------------------

    def _mask(self, x: Exchange) -> None:
        """Secrets are replaced in every byte that goes back, whatever produced it."""
        reply = x.reply
        if reply is None or not reply.body:
            return
        body, found = x.snapshot.redactor.mask_json(reply.body)
        if found:
            x.detail["redacted"] = found
            reply.body = body

    # -- record ------------------------------------------------------------------------

    def _record(self, x: Exchange, method: Method) -> None:
        identity = x.identity
        if identity is None:
            return
        detail = x.detail
        detail["endpoint"] = x.endpoint or "/mcp"
        if method in (UNKNOWN, INVALID) and x.method:
            detail["method"] = _shown(x.method)
        if identity.on_behalf:
            detail["on_behalf"] = True
        if x.decision != "allow" or method.forwarded:
            detail["latency_ms"] = x.latency_ms()
        self._explain(x)
        self.audit.record(AuditEvent(self._actor(identity.on_behalf, identity.agent_id), method.action,
                                     x.target or f"session:{x.endpoint or '/mcp'}", x.decision,
                                     self._agent_name(identity.agent_id), detail))

    def _explain(self, x: Exchange) -> None:
        """A denial by the policy says why in the owner's words (never to the agent)."""
        error = x.reply is not None and x.decision == "deny"
        item = x.item
        if not error or item is None or x.detail.get("reason") in ("unknown-tool", "unknown-server"):
            return
        policy = x.snapshot.surface.policy
        decision = policy.check(x.identity.agent_id, item.server_id, item.ref, time.time())  # type: ignore[union-attr]
        if not decision.allowed:
            x.detail["why"] = explain(policy, decision, x.identity.agent_id, item.server_id, item.ref)  # type: ignore[union-attr]

    def _agent_name(self, agent_id: str) -> str:
        entry = self.snapshots.current.surface.policy.agents.get(agent_id)
        return entry.name if entry else agent_id

    def _actor(self, on_behalf: bool, agent_id: str) -> str:
        return "owner" if on_behalf else f"agent:{self._agent_name(agent_id)}"

    def summarise_refusals(self) -> AuditEvent | None:
        """One record for the unauthenticated refusals since the last call, if any."""
        return counted(self.unauthenticated, "anonymous", "http.refused", "deny")


def _shown(value: Any) -> str:
    return str(value)[:200]
