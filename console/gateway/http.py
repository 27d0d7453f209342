"""The Streamable HTTP transport (MCP 2025-11-25) as a plain ASGI app.

Checks run cheapest-first and before any work: the Host header (DNS rebinding), the
Origin header (browsers), the bearer token, then the method, content type, body size,
JSON, session and protocol version. Every refusal is a JSON body with the right status;
nothing a client sends can take the gateway down for the other agents.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from console import __version__
from console.audit import AuditEvent
from console.gateway import jsonrpc as rpc
from console.gateway.auth import Identity, identify
from console.gateway.methods import SUPPORTED_VERSIONS, initialize_result, negotiate
from console.gateway.sessions import AgentSession

if TYPE_CHECKING:
    from console.gateway.service import Gateway

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

log = logging.getLogger(__name__)
_SERVER_PATH = re.compile(r"^/servers/([a-z0-9][a-z0-9-]{0,39})/mcp/?$")
JSON_HEADERS = [(b"content-type", b"application/json")]
KEEPALIVE_SECONDS = 15.0


class HttpError(Exception):
    def __init__(self, status: int, message: str, code: int = rpc.INVALID_REQUEST,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers or []


async def respond(send: Send, status: int, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None) -> None:
    all_headers = [*(headers or []), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


class McpHttpApp:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/healthz":
            body = rpc.dumps({"ok": True, "version": __version__, "toolbox": self.gw.toolbox.name})
            await respond(send, 200, body, JSON_HEADERS)
            return
        if path in ("/mcp", "/mcp/"):
            endpoint = None
        elif match := _SERVER_PATH.match(path):
            endpoint = match.group(1)
        else:
            await respond(send, 404, rpc.dumps({"error": "not found: the MCP endpoint is /mcp"}), JSON_HEADERS)
            return
        try:
            await self._mcp(scope, receive, send, endpoint)
        except HttpError as exc:
            body = rpc.error(None, exc.code, str(exc))
            await respond(send, exc.status, body, [*JSON_HEADERS, *exc.headers])
        except Exception:  # a bug must cost one request, never the gateway or a traceback to the client
            log.exception("request failed")
            with contextlib.suppress(Exception):
                await respond(send, 500, rpc.error(None, rpc.INTERNAL_ERROR, "internal error"), JSON_HEADERS)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- checks ------------------------------------------------------------------------

    def _identity(self, headers: dict[bytes, bytes]) -> Identity:
        host = headers.get(b"host", b"").decode("latin-1").lower()
        if host not in self.gw.allowed_hosts:
            raise HttpError(421, f"Host {host[:100]!r} is not this gateway's (DNS rebinding protection)")
        origin = headers.get(b"origin")
        if origin is not None and origin.decode("latin-1").lower() not in self.gw.allowed_origins:
            raise HttpError(403, "requests from this Origin are not allowed")
        authorization = headers.get(b"authorization")
        credential = authorization.decode("latin-1") if authorization else None
        identity = identify(credential, self.gw.surface.policy, self.gw.owner_key, time.time())
        if identity is None and credential and self.gw.caught_up():
            identity = identify(credential, self.gw.surface.policy, self.gw.owner_key, time.time())
        if identity is None:
            raise HttpError(401, "missing or invalid bearer token",
                            headers=[(b"www-authenticate", b'Bearer realm="toolbox-console"')])
        return identity

    def _session(self, headers: dict[bytes, bytes], identity: Identity, endpoint: str | None) -> AgentSession:
        session_id = headers.get(b"mcp-session-id")
        if not session_id:
            raise HttpError(400, "missing Mcp-Session-Id header: send initialize first")
        session = self.gw.sessions.get(session_id.decode("latin-1"), identity.agent_id)
        if session is None or session.endpoint != endpoint:
            raise HttpError(404, "session not found: it ended or never existed; initialize a new one")
        version = headers.get(b"mcp-protocol-version")
        if version is not None and version.decode("latin-1") not in SUPPORTED_VERSIONS:
            raise HttpError(400, f"unsupported MCP-Protocol-Version {version.decode('latin-1')[:40]!r}; "
                                 f"supported: {', '.join(SUPPORTED_VERSIONS)}")
        return session

    # -- methods -----------------------------------------------------------------------

    async def _mcp(self, scope: Scope, receive: Receive, send: Send, endpoint: str | None) -> None:
        headers = dict(scope["headers"])
        identity = self._identity(headers)
        method = scope["method"]
        if method == "POST":
            await self._post(headers, receive, send, identity, endpoint)
        elif method == "GET":
            accept = headers.get(b"accept", b"").decode("latin-1")
            if "text/event-stream" not in accept:
                raise HttpError(406, "GET opens an event stream: send Accept: text/event-stream")
            await self._stream(self._session(headers, identity, endpoint), receive, send)
        elif method == "DELETE":
            session = self._session(headers, identity, endpoint)
            self.gw.end_session(session, "client ended it")
            await respond(send, 200, b"")
        else:
            raise HttpError(405, f"method {method} is not allowed here", headers=[(b"allow", b"GET, POST, DELETE")])

    async def _read_body(self, receive: Receive) -> bytes:
        limit = self.gw.settings.max_body_bytes
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise HttpError(400, "the client went away before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise HttpError(413, f"the request body is over {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _post(self, headers: dict[bytes, bytes], receive: Receive, send: Send, identity: Identity,
                    endpoint: str | None) -> None:
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type != b"application/json":
            raise HttpError(415, "send the JSON-RPC message as Content-Type: application/json")
        accept = headers.get(b"accept", b"*/*").decode("latin-1")
        if not any(kind in accept for kind in ("application/json", "text/event-stream", "*/*")):
            raise HttpError(406, "accept application/json (and text/event-stream) responses")
        body = await self._read_body(receive)
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise HttpError(400, "the body is not valid JSON (or nested too deeply)", rpc.PARSE_ERROR) from None
        if isinstance(message, list):
            raise HttpError(400, "JSON-RPC batches are not supported: send one message per request")
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            raise HttpError(400, "not a JSON-RPC 2.0 message")
        method = message.get("method")
        has_id = "id" in message
        if has_id and not rpc.is_valid_id(message["id"]):
            raise HttpError(400, "a JSON-RPC id must be a string or an integer")
        if method == "initialize":
            await self._initialize(headers, send, identity, endpoint, message)
            return
        session = self._session(headers, identity, endpoint)
        if not isinstance(method, str):
            await respond(send, 202)  # a response to something we asked: nothing to do
            return
        if not has_id:
            self._notification(session, method, message.get("params"))
            await respond(send, 202)
            return
        reply = await self.gw.methods.handle(session, message["id"], method, message.get("params"))
        await respond(send, 200, reply, JSON_HEADERS)

    async def _initialize(self, headers: dict[bytes, bytes], send: Send, identity: Identity, endpoint: str | None,
                          message: dict[str, Any]) -> None:
        if "id" not in message:
            raise HttpError(400, "initialize must be a request with an id")
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        version = negotiate(params.get("protocolVersion"))
        session = self.gw.open_session(identity, endpoint, version, params.get("clientInfo"))
        body = rpc.result(message["id"], initialize_result(version, self.gw.instructions(endpoint)))
        await respond(send, 200, body, [*JSON_HEADERS, (b"mcp-session-id", session.id.encode())])

    def _notification(self, session: AgentSession, method: str, params: Any) -> None:
        if method == "notifications/cancelled" and isinstance(params, dict):
            entry = session.in_flight.pop(params.get("requestId"), None)  # type: ignore[arg-type]
            if entry is not None:
                forwarder, number = entry
                asyncio.get_running_loop().create_task(forwarder.cancel(number, "the agent cancelled"))  # type: ignore[attr-defined]

    async def _stream(self, session: AgentSession, receive: Receive, send: Send) -> None:
        """Server-to-client messages (tools/list_changed) as an SSE stream."""
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]})
        await send({"type": "http.response.body", "body": b": stream open\n\n", "more_body": True})
        disconnected = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected.set()

        watcher = asyncio.create_task(watch())
        try:
            while not disconnected.is_set() and self.gw.sessions.get(session.id, session.agent_id) is session:
                getter = asyncio.create_task(session.outbox.get())
                gone = asyncio.create_task(disconnected.wait())
                done, _ = await asyncio.wait({getter, gone}, timeout=KEEPALIVE_SECONDS,
                                             return_when=asyncio.FIRST_COMPLETED)
                gone.cancel()
                if getter in done:
                    payload = b"event: message\ndata: " + getter.result() + b"\n\n"
                else:
                    getter.cancel()
                    payload = b": keepalive\n\n"
                if disconnected.is_set():
                    break
                await send({"type": "http.response.body", "body": payload, "more_body": True})
        finally:
            watcher.cancel()
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})


def session_event(actor: str, action: str, session: AgentSession, agent: str, detail: dict[str, Any]) -> AuditEvent:
    return AuditEvent(actor, action, f"session:{session.endpoint or '/mcp'}", "ok", agent, detail)
