"""MCP 2026-07-28 on the same endpoints: stateless requests beside the sessions.

A 2026-07-28 request carries no ``Mcp-Session-Id``: each one names its protocol
version, client capabilities and client info in ``params._meta``, repeats the version
and method in headers (``MCP-Protocol-Version``, ``Mcp-Method``, ``Mcp-Name``), and is
authenticated by its bearer token every time. For entitlements its "session" is the
agent itself. It runs through the very same pipeline steps as a session's request; this
module only says what differs:

- which requests are of this era (``is_modern``) and whether their envelope holds
  together (``admit``: the SDK's own validation ladder, plus the gateway's size cap);
- which methods exist in it (``methods``: no ping, setLevel or subscribe pair; adds
  ``server/discover`` and ``subscriptions/listen``);
- how its replies look (``finish``): every result says ``resultType``, cacheable ones
  carry ``ttlMs``/``cacheScope``, and errors get the HTTP status the era assigns.

A result that reaches ``finish`` from a server is "complete": a server of the handshake
era cannot ask the agent for input that way, and one that claims to is not believed (it
would let a server ask an agent for sampling behind its owner's per-server policy); a
server of the new era that asks for input was asked on the agent's behalf already, under
that policy (``upstream_input``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    MCP_PARAM_HEADER_PREFIX,
    MCP_PROTOCOL_VERSION_HEADER,
    InboundLadderRejection,
    classify_inbound_request,
    validate_mcp_param_headers,
)
from mcp_types import CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, SERVER_INFO_META_KEY
from mcp_types.jsonrpc import HEADER_MISMATCH, INVALID_PARAMS, UNSUPPORTED_PROTOCOL_VERSION
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from console.gateway import jsonrpc as rpc
from console.gateway.exchange import Exchange, Refused
from console.gateway.methods import ENVELOPE, METHODS, SERVER_INFO, Method, server_capabilities
from console.gateway.sessions import AgentSession

VERSIONS = tuple(MODERN_PROTOCOL_VERSIONS)
MAX_META_BYTES = 16 * 1024
"""An envelope is a version, capabilities and a name: anything larger is not one."""
LIST_TTL_MS = 5_000
"""How long an agent may reuse a listing. Grants change live, but a stale listing only
costs a refused call (every call is authorized afresh), and a listening agent is told
``list_changed`` at once."""
DISCOVER_TTL_MS = 60_000
CACHEABLE = {"tools/list": LIST_TTL_MS, "prompts/list": LIST_TTL_MS, "resources/list": LIST_TTL_MS,
             "resources/templates/list": LIST_TTL_MS, "server/discover": DISCOVER_TTL_MS, "resources/read": 0}
"""Method -> ``ttlMs``. Always ``cacheScope: private``: what an agent sees is its own."""
REMOVED = frozenset({"ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe", "initialize"})
"""Methods of the handshake era that 2026-07-28 no longer has."""
LISTEN = Method("subscriptions.listen")
"""Answered by a stream (``listen.py``), neither forwarded nor answered at once."""
_ROUTING = (MCP_PROTOCOL_VERSION_HEADER, MCP_METHOD_HEADER, MCP_NAME_HEADER)
_ROUTING_BYTES = frozenset(name.encode() for name in _ROUTING)
_PARAM = MCP_PARAM_HEADER_PREFIX.lower().encode()
_SHOWN = 100


def header_version(headers: dict[bytes, bytes]) -> str | None:
    value = headers.get(MCP_PROTOCOL_VERSION_HEADER.encode())
    return value.decode("latin-1") if value is not None else None


def duplicated(raw: list[tuple[bytes, bytes]], folded: dict[bytes, bytes]) -> Refused | None:
    """A routing or parameter header sent twice: whoever reads the first copy and whoever
    reads the last (this gateway) would route the one request two ways. ``folded`` is
    ``raw`` as a dict: no header repeats at all when both are as long (the usual case,
    which costs no look at the names)."""
    if len(folded) == len(raw):
        return None
    seen: set[bytes] = set()
    for key, _value in raw:
        name = key.lower()
        if name in _ROUTING_BYTES or name.startswith(_PARAM):
            if name in seen:
                return Refused(f"the {name.decode('latin-1')[:_SHOWN]} header appears more than once",
                               code=HEADER_MISMATCH, status=400, reason="duplicate-header")
            seen.add(name)
    return None


def check_params(x: Exchange) -> None:
    """A call's ``Mcp-Param-*`` headers agree with its arguments, for the parameters the
    tool's (approved) schema names with ``x-mcp-header``: an intermediary may route on them."""
    if x.method != "tools/call" or x.item is None:
        return
    wire = x.snapshot.surface.wire.get((x.item.server_id, x.item.ref)) or {}
    arguments = x.params.get("arguments") or {}
    params = {k.decode("latin-1"): v.decode("latin-1") for k, v in x.headers.items() if k.startswith(_PARAM)}
    rejection = validate_mcp_param_headers(wire.get("inputSchema"), arguments, params)
    if rejection is not None:
        raise Refused(rejection.message, code=rejection.code, status=400, reason="header-mismatch")


def is_modern(x: Exchange) -> bool:
    """A request of the stateless era: its version header names that era, or it has no
    session and speaks in envelopes (so an unknown version is told which ones exist
    instead of being asked for a session it could never open)."""
    version = header_version(x.headers)
    if version in VERSIONS:
        return True
    if b"mcp-session-id" in x.headers or x.method == "initialize":
        return False
    meta = x.params.get("_meta")
    return version is not None or (isinstance(meta, dict) and any(str(k).startswith(ENVELOPE) for k in meta))


def admit(x: Exchange) -> None:
    """Check the envelope of a stateless request; raises ``Refused`` with the era's code."""
    if b"mcp-session-id" in x.headers:
        # Sessions do not exist in this era: a session id here is a mistake or someone
        # else's, and either way it is refused alike, whether or not it names a session.
        raise Refused("a 2026-07-28 request carries no Mcp-Session-Id: drop the header (or initialize and use "
                      "the session with its own protocol version)", status=400, reason="session-id-in-stateless")
    if not x.is_request:
        version = header_version(x.headers)
        if version not in VERSIONS:
            raise _refusal(_unsupported(version or ""), x)
        x.protocol = version
        return
    meta = x.params.get("_meta")
    if isinstance(meta, dict) and len(rpc.dumps(meta)) > MAX_META_BYTES:
        raise Refused(f"params._meta is over {MAX_META_BYTES} bytes", code=INVALID_PARAMS, status=400,
                      reason="meta-too-large")
    headers = {name: value.decode("latin-1") for name in _ROUTING
               if (value := x.headers.get(name.encode())) is not None}
    verdict = classify_inbound_request(x.message or {}, headers=headers, supported_modern_versions=VERSIONS)
    if isinstance(verdict, InboundLadderRejection):
        raise _refusal(verdict, x)
    if not isinstance(verdict.client_capabilities, dict) or not isinstance(verdict.client_info, dict | None):
        raise Refused(f"params._meta[{CLIENT_CAPABILITIES_META_KEY!r}] and [{CLIENT_INFO_META_KEY!r}] must be "
                      f"objects", code=INVALID_PARAMS, status=400, reason="invalid-envelope")
    x.protocol = verdict.protocol_version
    x.detail["protocol"] = verdict.protocol_version
    client = verdict.client_info or {}
    x.detail["client"] = {k: str(client[k])[:_SHOWN] for k in ("name", "version") if k in client}


def _unsupported(requested: str) -> InboundLadderRejection:
    return InboundLadderRejection(UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version",
                                  {"supported": list(VERSIONS), "requested": requested[:_SHOWN]})


def _refusal(rejection: InboundLadderRejection, x: Exchange) -> Refused:
    reason = {UNSUPPORTED_PROTOCOL_VERSION: "bad-protocol-version", INVALID_PARAMS: "invalid-envelope"}
    data = rejection.data
    if isinstance(data, dict):  # what the client asked for, echoed no longer than a version is
        data = {**data, "requested": str(data.get("requested"))[:_SHOWN]}
        x.detail["requested"] = data["requested"]
    return Refused(rejection.message, code=rejection.code, status=ERROR_CODE_HTTP_STATUS.get(rejection.code, 400),
                   reason=reason.get(rejection.code, "header-mismatch"), data=data)


def methods(instructions: Callable[[str | None], str], can_subscribe: Callable[[str | None], bool]) -> dict[str, Method]:
    """The era's method table: the handshake era's, less what it removed, plus discover."""

    def discover(x: Exchange) -> dict[str, Any]:
        x.target = f"gateway:{x.endpoint or '/mcp'}"
        capabilities = server_capabilities(subscribe=can_subscribe(x.endpoint))
        return {"supportedVersions": list(VERSIONS), "capabilities": capabilities,
                "instructions": instructions(x.endpoint),
                "_meta": {SERVER_INFO_META_KEY: SERVER_INFO}}

    table = {name: method for name, method in METHODS.items() if name not in REMOVED}
    table["server/discover"] = Method("server.discover", answer=discover)
    table["subscriptions/listen"] = LISTEN
    return table


def stand_in(x: Exchange) -> AgentSession:
    """What stands for a stateless call where a server's request is matched to the call
    that caused it (``client_requests``): without it the call would not be counted in
    flight, and "the server's only call in flight" could name another agent's. It
    declares what the agent's envelope declared; what it is asked goes back to the agent
    as an input-required result (``mrtr``)."""
    identity = x.identity
    assert identity is not None and x.protocol is not None
    session = AgentSession(f"stateless-{id(x)}", identity.agent_id, x.endpoint, x.protocol, identity.on_behalf)
    declared = x.params["_meta"].get(CLIENT_CAPABILITIES_META_KEY)
    session.capabilities = declared if isinstance(declared, dict) else {}
    return session


def finish(x: Exchange, *, forwarded: bool) -> None:
    """The reply as the era words it: ``resultType`` on every result, caching hints on
    cacheable ones, and an error's HTTP status from the era's table."""
    reply = x.reply
    if reply is None or not reply.body or not reply.body.startswith(b"{"):
        return
    message = json.loads(reply.body)
    error = message.get("error")
    if isinstance(error, dict):
        if reply.status == 200:
            reply.status = ERROR_CODE_HTTP_STATUS.get(error.get("code"), 200)  # type: ignore[arg-type]
        return
    result = message.get("result")
    if not isinstance(result, dict):
        return
    if "input_required" not in x.detail:  # the gateway's own input-required result stays as it is
        if forwarded:
            # A server's own input-required result was asked of the agent by the gateway
            # (``upstream_input``); one still here is a claim the gateway does not relay.
            said = result.pop("resultType", "complete")
            for key in ("inputRequests", "requestState"):
                said = "input_required" if result.pop(key, None) is not None else said
            if said != "complete":
                x.detail["forged_result_type"] = True
        result["resultType"] = "complete"
    ttl = CACHEABLE.get(x.method)
    if ttl is not None:
        result.setdefault("ttlMs", ttl)
        result["cacheScope"] = "private"
    reply.body = rpc.dumps(message)
