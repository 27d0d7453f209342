"""The MCP methods an agent may call on the gateway.

``tools/call`` is the hot path: resolve the exposed name, check the compiled policy,
check the arguments for secrets, forward the raw request over the server's shared
session, mask secrets in the result bytes, swap the id back. Everything is audited, and
a refusal never says more than "not granted": an agent learns nothing about tools it
cannot see.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from console import __version__
from console.audit import AuditEvent
from console.gateway import jsonrpc as rpc
from console.gateway.forwarder import RawResponse, UpstreamFailed
from console.gateway.sessions import AgentSession
from console.gateway.surface import SEPARATOR, ToolRef
from console.trust.redact import argument_digest

if TYPE_CHECKING:
    from console.gateway.service import Gateway

SUPPORTED_VERSIONS = ("2025-03-26", "2025-06-18", "2025-11-25")
LATEST_VERSION = SUPPORTED_VERSIONS[-1]

Handler = Callable[[AgentSession, rpc.JsonId, dict[str, Any]], Awaitable[bytes]]


def negotiate(requested: Any) -> str:
    return requested if requested in SUPPORTED_VERSIONS else LATEST_VERSION


def initialize_result(version: str, instructions: str) -> dict[str, Any]:
    return {
        "protocolVersion": version,
        "capabilities": {
            "tools": {"listChanged": True},
            "resources": {"subscribe": False, "listChanged": False},
            "prompts": {"listChanged": False},
            "logging": {},
        },
        "serverInfo": {"name": "toolbox-console", "title": "Toolbox Console gateway", "version": __version__},
        "instructions": instructions,
    }


def not_granted(request_id: rpc.JsonId, name: Any) -> bytes:
    return rpc.error(request_id, rpc.INVALID_PARAMS, f"tool {str(name)[:200]!r} is not granted to this agent")


class Methods:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.table: dict[str, Handler] = {
            "ping": self.ping,
            "tools/list": self.tools_list,
            "tools/call": self.tools_call,
            "resources/list": self.resources_list,
            "resources/templates/list": self.templates_list,
            "resources/read": self.resources_read,
            "prompts/list": self.prompts_list,
            "prompts/get": self.prompts_get,
            "logging/setLevel": self.ping,
        }

    async def handle(self, session: AgentSession, request_id: rpc.JsonId, method: str, params: Any) -> bytes:
        handler = self.table.get(method)
        if handler is None:
            return rpc.error(request_id, rpc.METHOD_NOT_FOUND, f"method {method[:100]!r} is not supported")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            return rpc.error(request_id, rpc.INVALID_PARAMS, "params must be an object")
        return await handler(session, request_id, params)

    # -- small ones --------------------------------------------------------------------

    async def ping(self, session: AgentSession, request_id: rpc.JsonId, params: dict[str, Any]) -> bytes:
        return rpc.result(request_id, {})

    async def tools_list(self, session: AgentSession, request_id: rpc.JsonId, params: dict[str, Any]) -> bytes:
        self.gw.caught_up()
        tools = self.gw.surface.tools_json(session.agent_id, session.endpoint, time.time())
        session.visible = frozenset(t["name"] for t in tools)
        return rpc.result(request_id, {"tools": tools})

    # -- the hot path ------------------------------------------------------------------

    async def tools_call(self, session: AgentSession, request_id: rpc.JsonId, params: dict[str, Any]) -> bytes:
        started = time.perf_counter()
        gw = self.gw
        surface = gw.surface
        name = params.get("name")
        arguments = params.get("arguments") or {}
        ref = surface.resolve(session.endpoint, name) if isinstance(name, str) else None
        decision = surface.check(session.agent_id, ref, time.time())
        if not decision.allowed and gw.caught_up():
            surface = gw.surface
            ref = surface.resolve(session.endpoint, name) if isinstance(name, str) else None
            decision = surface.check(session.agent_id, ref, time.time())
        target = f"tool:{gw.toolbox.name}/{ref.server}/{ref.tool}" if ref else f"tool:{str(name)[:200]}"
        detail: dict[str, Any] = {"endpoint": session.endpoint or "/mcp"}
        if not decision.allowed:
            detail["reason"] = decision.reason.value
            if ref is not None and decision.reason.value not in ("unknown-tool", "unknown-server"):
                detail["why"] = surface.policy.explain(decision, session.agent_id, ref.server_id, ref.tool)
            self._audit(session, target, "deny", detail)
            return not_granted(request_id, name)
        assert ref is not None
        if not isinstance(arguments, dict):
            return rpc.error(request_id, rpc.INVALID_PARAMS, "arguments must be an object")
        redactor = gw.redactor
        detail["arguments"] = argument_digest(arguments, redactor)
        leaked = redactor.findings(json.dumps(arguments, ensure_ascii=False))
        if leaked:
            detail["reason"] = "secret-in-arguments"
            detail["found"] = leaked
            self._audit(session, target, "deny", detail)
            return rpc.error(request_id, rpc.CALL_BLOCKED,
                             "the call was blocked: its arguments contain a credential; the owner was notified")
        upstream_params: dict[str, Any] = {"name": ref.tool, "arguments": arguments}
        if "_meta" in params and isinstance(params["_meta"], dict):
            upstream_params["_meta"] = {k: v for k, v in params["_meta"].items() if k != "progressToken"}
        try:
            response = await self._forward(session, request_id, ref, "tools/call", upstream_params)
        except UpstreamFailed as exc:
            detail["error"] = str(exc)
            detail["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
            self._audit(session, target, "error", detail)
            return rpc.error(request_id, rpc.SERVER_UNAVAILABLE,
                             f"server {ref.server} did not complete the call: {exc}; try again")
        line = response.for_caller(request_id)
        if len(line) > gw.settings.max_result_bytes:
            detail["error"] = f"result of {len(line)} bytes over the {gw.settings.max_result_bytes}-byte cap"
            self._audit(session, target, "error", detail)
            return rpc.error(request_id, rpc.INTERNAL_ERROR,
                             f"the result is too large ({len(line)} bytes; the gateway's cap is "
                             f"{gw.settings.max_result_bytes}); ask for less")
        line, masked = self._mask(line)
        if masked:
            detail["redacted"] = masked
        detail["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
        detail["result_bytes"] = len(line)
        self._audit(session, target, "allow", detail)
        return line

    def _mask(self, line: bytes) -> tuple[bytes, list[str]]:
        """Replace secrets in a result with ‹secret:NAME›: the agent keeps the rest.

        Safe on the raw JSON: the patterns never span a quote or a backslash, so what
        is replaced lies inside one string and the line stays valid JSON.
        """
        text = line.decode("utf-8", "replace")
        found = self.gw.redactor.findings(text)
        if not found:
            return line, []
        return self.gw.redactor.redact(text).encode("utf-8"), found

    async def _forward(self, session: AgentSession, request_id: rpc.JsonId, ref: ToolRef, method: str,
                       params: dict[str, Any]) -> RawResponse:
        forwarder = await self.gw.forwarder(ref.server_id)

        def track(number: int) -> None:
            if request_id is not None:
                session.in_flight[request_id] = (forwarder, number)

        try:
            return await forwarder.request(method, params, self.gw.runtime.call_timeout, track)
        finally:
            session.in_flight.pop(request_id, None)  # type: ignore[arg-type]

    def _audit(self, session: AgentSession, target: str, decision: str, detail: dict[str, Any]) -> None:
        name = self.gw.agent_name(session.agent_id)
        if session.on_behalf:
            detail["on_behalf"] = True
        actor = "owner" if session.on_behalf else f"agent:{name}"
        self.gw.writer.record(AuditEvent(actor, "tool.call", target, decision, name, detail))

    # -- resources and prompts, shared per server --------------------------------------

    async def _gather(self, session: AgentSession, method: str, key: str) -> list[tuple[str, dict[str, Any]]]:
        """``method`` on every server the agent may use; each page followed."""
        found: list[tuple[str, dict[str, Any]]] = []
        for server_id in self.gw.surface.servers_for(session.agent_id, session.endpoint, time.time()):
            server = self.gw.surface.server_names[server_id]
            params: dict[str, Any] = {}
            for _ in range(50):
                try:
                    response = await self._forward(session, None, ToolRef(server_id, server, ""), method, params)
                except UpstreamFailed:
                    break
                decoded = json.loads(response.line)
                page = decoded.get("result") or {}
                found += [(server_id, item) for item in page.get(key, []) if isinstance(item, dict)]
                cursor = page.get("nextCursor")
                if not cursor:
                    break
                params = {"cursor": cursor}
        return found

    async def resources_list(self, session: AgentSession, request_id: rpc.JsonId, params: dict[str, Any]) -> bytes:
        items = await self._gather(session, "resources/list", "resources")
        for server_id, item in items:
            if isinstance(item.get("uri"), str):
                session.resource_servers[item["uri"]] = server_id
        return rpc.result(request_id, {"resources": [item for _sid, item in items]})

    async def templates_list(self, session: AgentSession, request_id: rpc.JsonId, params: dict[str, Any]) -> bytes:
        items = await self._gather(session, "resources/templates/list", "resourceTemplates")
        return rpc.result(request_id, {"resourceTemplates": [item for _sid, item in items]})

    async def resources_read(self, session: AgentSession, request_id: rpc.JsonId, params: dict[str, Any]) -> bytes:
        uri = params.get("uri")
        allowed = set(self.gw.surface.servers_for(session.agent_id, session.endpoint, time.time()))
        server_id = session.resource_servers.get(uri) if isinstance(uri, str) else None
        if server_id is None and len(allowed) == 1:
            server_id = next(iter(allowed))  # templated URIs of the only server in reach
        if server_id is None or server_id not in allowed:
            return rpc.error(request_id, rpc.INVALID_PARAMS, f"resource {str(uri)[:200]!r} is not available")
        ref = ToolRef(server_id, self.gw.surface.server_names[server_id], "")
        return await self._relay(session, request_id, ref, "resources/read", {"uri": uri}, f"resource:{uri}")

    async def prompts_list(self, session: AgentSession, request_id: rpc.JsonId, params: dict[str, Any]) -> bytes:
        items = await self._gather(session, "prompts/list", "prompts")
        prompts = []
        for server_id, item in items:
            if session.endpoint is None:
                item = {**item, "name": f"{self.gw.surface.server_names[server_id]}{SEPARATOR}{item.get('name')}"}
            prompts.append(item)
        return rpc.result(request_id, {"prompts": prompts})

    async def prompts_get(self, session: AgentSession, request_id: rpc.JsonId, params: dict[str, Any]) -> bytes:
        name = params.get("name")
        ref = self.gw.surface.resolve(session.endpoint, name) if isinstance(name, str) else None
        allowed = self.gw.surface.servers_for(session.agent_id, session.endpoint, time.time())
        if ref is None or ref.server_id not in allowed:
            return rpc.error(request_id, rpc.INVALID_PARAMS, f"prompt {str(name)[:200]!r} is not available")
        upstream = {"name": ref.tool, "arguments": params.get("arguments") or {}}
        return await self._relay(session, request_id, ref, "prompts/get", upstream, f"prompt:{ref.server}/{ref.tool}")

    async def _relay(self, session: AgentSession, request_id: rpc.JsonId, ref: ToolRef, method: str,
                     params: dict[str, Any], target: str) -> bytes:
        try:
            response = await self._forward(session, request_id, ref, method, params)
        except UpstreamFailed as exc:
            return rpc.error(request_id, rpc.SERVER_UNAVAILABLE, f"server {ref.server} did not answer: {exc}")
        line, masked = self._mask(response.for_caller(request_id))
        name = self.gw.agent_name(session.agent_id)
        actor = "owner" if session.on_behalf else f"agent:{name}"
        self.gw.writer.record(AuditEvent(actor, method, target, "allow", name,
                                         {"redacted": masked} if masked else {}))
        return line
