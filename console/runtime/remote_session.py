"""An MCP client session with a remote server, over HTTP, shaped like a container's.

The gateway forwards raw JSON-RPC lines over a server's channel and lets the SDK's
session share it (``forwarder``, ``transport``). A remote server's channel is the
same object over the SDK's own HTTP client transports (Streamable HTTP, or the older
HTTP+SSE where a server still speaks only that): each line sent becomes one message
of the transport, with the per-message headers the protocol era asks for; each
message received is handed to the line handlers as one line. The transport runs in
a task of its own, so a server that goes away ends the channel (as a container's
attach stream ends) instead of cancelling whoever uses the session.

Credentials go on requests through one ``httpx2.Auth`` (``RemoteTarget.auth``): static
headers from the vault are one (``HeaderAuth``), and an OAuth flow can wrap them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import httpx2
import mcp_types as types
from mcp.client.sse import sse_client
from mcp.client.streamable_http import MCP_SESSION_ID, streamable_http_client
from mcp.shared.inbound import (
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    MCP_PROTOCOL_VERSION_HEADER,
    NAME_BEARING_METHODS,
    encode_header_value,
    mcp_param_headers,
    x_mcp_header_map,
)
from mcp.shared.message import ClientMessageMetadata, SessionMessage
from mcp_types import PROTOCOL_VERSION_META_KEY

from console.errors import TbxError
from console.runtime.attach import ChannelClosed, ClosingChannel
from console.runtime.session import Ask, Capture, ServerUnavailable, Session, _connect, _describe, _Tapped
from console.trust.redact import Redactor

log = logging.getLogger(__name__)

Transport = Literal["streamable-http", "sse"]
MAX_BODY = 16 * 1024 * 1024
"""The most one response body (or one SSE event) of a remote server may hold."""
CONNECT_TIMEOUT = 10.0


class HeaderAuth(httpx2.Auth):
    """Static headers on every request to the server, then ``inner``'s flow if any.

    The one seam for credentials to a remote server: an OAuth ``httpx2.Auth`` (part of
    MCP authorization to the upstream) is passed as ``inner`` and sees each request
    with the static headers already on it.
    """

    def __init__(self, headers: Mapping[str, str], inner: httpx2.Auth | None = None) -> None:
        self._headers = dict(headers)
        self._inner = inner
        self.refusal: str | None = None
        """Why ``inner`` last refused to go on (a sign-in to renew), until it goes on again:
        the SDK's transport only logs an error of a request's auth and ends the session, so
        the channel ends saying this rather than that the server closed the connection."""

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        request.headers.update(self._headers)
        if self._inner is None:
            yield request
            return
        flow = self._inner.async_auth_flow(request)
        try:
            response = yield await flow.__anext__()
            while True:
                response = yield await flow.asend(response)
        except StopAsyncIteration:
            self.refusal = None
            return
        except TbxError as exc:
            self.refusal = str(exc)
            raise
        finally:
            await flow.aclose()


@dataclass(frozen=True)
class RemoteTarget:
    url: str
    transport: Transport = "streamable-http"
    """``streamable-http`` falls back to HTTP+SSE when the server answers its first POST
    with a 4xx other than 401 (the spec's backwards compatibility); ``sse`` goes there
    directly."""
    auth: httpx2.Auth | None = None
    timeout: float = 30.0

    @property
    def origin(self) -> str:
        """The server's origin, for labels and logs (never a path, query or userinfo)."""
        url = httpx2.URL(self.url)
        port = f":{url.port}" if url.port else ""
        return f"{url.scheme}://{url.host}{port}"


class _Guarded(httpx2.AsyncByteStream):
    """A response body that ends with a ``StreamError`` (which the SDK's transport makes
    that request's error, where anything else would end the whole session) when it grows
    past ``limit`` or its request is given up (``aborted``), even mid-wait for a chunk."""

    def __init__(self, inner: httpx2.AsyncByteStream, limit: int | None, aborted: asyncio.Event) -> None:
        self._inner, self._limit, self._aborted = inner, limit, aborted

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = aiter(self._inner)
        seen = 0
        while True:
            following = asyncio.ensure_future(anext(chunks))
            following.add_done_callback(_retrieved)  # its end is read below, or no longer wanted
            stop = asyncio.ensure_future(self._aborted.wait())
            try:
                await asyncio.wait({following, stop}, return_when=asyncio.FIRST_COMPLETED)
            finally:  # also when the reader closes us mid-wait: no task is left behind
                stop.cancel()
                if not following.done():
                    following.cancel()
            if following.cancelled():
                raise httpx2.StreamError("the request was given up")
            try:
                chunk = following.result()
            except StopAsyncIteration:
                return
            seen += len(chunk)
            if self._limit is not None and seen > self._limit:
                raise httpx2.StreamError(f"the server's response is over {self._limit // 1048576} MiB")
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def _retrieved(task: asyncio.Future[bytes]) -> None:
    if not task.cancelled():
        task.exception()


class _Answering(httpx2.AsyncByteStream):
    """A request's plain-JSON answer, let through only if it carries that request's id.

    The SDK rebinds ids only on event-stream answers: a plain-JSON body naming another
    request still in flight would resolve that one, handing one agent's call the answer
    a server chose for it. Refused instead: the body becomes an error for its own request.
    """

    def __init__(self, inner: httpx2.AsyncByteStream, key: str, origin: str,
                 refused: Callable[[object, str], None]) -> None:
        self._inner, self._key, self._origin, self._refused = inner, key, origin, refused

    async def __aiter__(self) -> AsyncIterator[bytes]:
        body = b"".join([chunk async for chunk in self._inner])  # bounded by _Guarded beneath
        try:
            message = json.loads(body)
        except ValueError:
            yield body  # not JSON at all: the SDK's parse error already names this request
            return
        if isinstance(message, dict) and json.dumps(message.get("id")) == self._key and "method" not in message:
            yield body
            return
        said = f"{self._origin} answered a request with another request's id or none (a protocol violation): refused"
        self._refused(json.loads(self._key), said)
        yield json.dumps({"jsonrpc": "2.0", "id": json.loads(self._key),
                          "error": {"code": types.INVALID_REQUEST, "message": said}}).encode()

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Guarding(httpx2.AsyncBaseTransport):
    """Bounds every body but an event stream's (the SDK bounds those per event), lets
    the channel end the response of a request it gave up (``abort``): the older era's
    cancellation is only a notification, and a server could keep each such stream open;
    and holds a request's plain-JSON answer to its id (``_Answering``)."""

    def __init__(self, limit: int, refused: Callable[[object, str], None] = lambda _id, _said: None) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self._limit = limit
        self._refused = refused
        self._open: dict[str, asyncio.Event] = {}

    def abort(self, request_id: object) -> None:
        found = self._open.get(json.dumps(request_id))
        if found is not None:
            found.set()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        key = _request_key(request)
        response = await self._inner.handle_async_request(request)
        events = response.headers.get("content-type", "").lower().startswith("text/event-stream")
        aborted = self._open.setdefault(key, asyncio.Event()) if key is not None else asyncio.Event()
        response.stream = _Guarded(response.stream, None if events else self._limit, aborted)  # type: ignore[arg-type]
        if key is not None and response.status_code < 300 and _plain_json(response):
            origin = RemoteTarget(str(request.url)).origin
            response.stream = _Answering(response.stream, key, origin, self._refused)
        if key is not None:
            inner_close = response.stream.aclose

            async def closed() -> None:
                if self._open.get(key) is aborted:
                    del self._open[key]
                await inner_close()

            response.stream.aclose = closed  # type: ignore[method-assign]
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def _plain_json(response: httpx2.Response) -> bool:
    return response.headers.get("content-type", "").lower().startswith("application/json")


def _request_key(request: httpx2.Request) -> str | None:
    """The JSON-RPC id a POST carries (as JSON text), if it is a request."""
    if request.method != "POST":
        return None
    try:
        message = json.loads(request.content)
    except (ValueError, httpx2.RequestNotRead):
        return None
    if isinstance(message, dict) and "method" in message and "id" in message:
        return json.dumps(message["id"])
    return None


class RemoteChannel(ClosingChannel):
    """A ``StdioChannel`` as the gateway uses one, over an SDK HTTP transport."""

    def __init__(self, target: RemoteTarget, notes: int = 50) -> None:
        super().__init__()
        self.target = target
        self.container = target.origin
        """What logs name the channel by (a container's id for an attached server)."""
        self.recent_stderr: deque[str] = deque(maxlen=notes)
        """What went wrong on the transport lately (a remote server has no stderr)."""
        self.protocol_version: str | None = None
        """The version the session negotiated (set once connected): its header rides on
        every message of the handshake era."""
        self.statuses: list[int] = []
        """HTTP statuses of the first responses, to tell a server of the older transport."""
        self._stdout: list[Callable[[bytes], None]] = []
        self._refusals: list[Callable[[object, str], None]] = []
        self._write: Any = None
        self._ready = asyncio.Event()
        self._param_maps: dict[str, dict[tuple[str, ...], str]] = {}
        self._ending: str | None = None
        self._http = _Guarding(MAX_BODY, self._protocol_violation)

    def on_refused(self, handler: Callable[[object, str], None]) -> None:
        """Told (request id, why) when an answer to that request is refused (``_Answering``):
        its caller fails with why, not with an anonymous JSON-RPC error."""
        self._refusals.append(handler)

    def _protocol_violation(self, request_id: object, said: str) -> None:
        log.warning("%s", said)
        self.recent_stderr.append(said)
        for handler in tuple(self._refusals):
            handler(request_id, said)

    def on_stdout(self, handler: Callable[[bytes], None]) -> Callable[[], None]:
        self._stdout.append(handler)
        return lambda: self._stdout.remove(handler)

    def on_stderr(self, handler: Callable[[bytes], None]) -> Callable[[], None]:
        return lambda: None  # nothing is ever written there

    async def start(self, transport: Transport) -> None:
        """Open the transport in a task of its own; return once it can take messages."""
        self._task = asyncio.create_task(self._run(transport), name=f"remote:{self.container}")
        waiter = asyncio.ensure_future(self._ready.wait())
        await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()

    async def send(self, line: bytes) -> None:
        if self.closed.is_set() or self._write is None:
            raise ChannelClosed(self.close_reason or "the connection to the server is closed")
        raw = json.loads(line)
        if raw.get("method") == "notifications/cancelled" and isinstance(raw.get("params"), dict):
            self._http.abort(raw["params"].get("requestId"))
        message = types.jsonrpc_message_adapter.validate_python(raw, by_name=False)
        metadata = ClientMessageMetadata(headers=self._headers_for(raw))
        try:
            await self._write.send(SessionMessage(message, metadata=metadata))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise ChannelClosed(self.close_reason or "the connection to the server is closed") from None

    def _headers_for(self, raw: dict[str, Any]) -> dict[str, str] | None:
        """What the SDK's session would stamp on this message: the handshake era's version
        header; the 2026-07-28 era's version, method, name and parameter headers."""
        method = raw.get("method")
        params = raw.get("params") if isinstance(raw.get("params"), dict) else {}
        meta = params.get("_meta") if isinstance(params.get("_meta"), dict) else {}
        modern = meta.get(PROTOCOL_VERSION_META_KEY)
        if not isinstance(method, str) or method == "initialize":
            return {MCP_PROTOCOL_VERSION_HEADER: self.protocol_version} if self.protocol_version else None
        if not isinstance(modern, str):
            return {MCP_PROTOCOL_VERSION_HEADER: self.protocol_version} if self.protocol_version else None
        headers = {MCP_PROTOCOL_VERSION_HEADER: modern, MCP_METHOD_HEADER: method}
        name_key = NAME_BEARING_METHODS.get(method)
        if name_key is not None and isinstance(name := params.get(name_key), str):
            headers[MCP_NAME_HEADER] = encode_header_value(name)
            if method == "tools/call" and (found := self._param_maps.get(name)):
                headers.update(mcp_param_headers(found, params.get("arguments") or {}))
        return headers

    def _received(self, message: SessionMessage) -> None:
        raw = message.message.model_dump(by_alias=True, mode="json", exclude_unset=True)
        tools = (raw.get("result") or {}).get("tools") if isinstance(raw.get("result"), dict) else None
        if isinstance(tools, list):
            for tool in tools:
                if isinstance(tool, dict) and isinstance(tool.get("name"), str):
                    with contextlib.suppress(Exception):  # a malformed schema routes no headers
                        self._param_maps[tool["name"]] = x_mcp_header_map(tool.get("inputSchema"))
        line = json.dumps(raw, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        for handler in tuple(self._stdout):
            handler(line)

    def _client(self, headers: dict[str, str] | None = None, timeout: httpx2.Timeout | None = None,
                auth: httpx2.Auth | None = None) -> httpx2.AsyncClient:
        async def seen(response: httpx2.Response) -> None:
            if len(self.statuses) < 8:
                self.statuses.append(response.status_code)
            if response.status_code == 404 and MCP_SESSION_ID in response.request.headers:
                # The server no longer knows our session (it restarted): the spec's word for
                # "start a new one", which the supervisor does once this channel ends.
                self._end("the server ended the session (it answered 404 to its session id)")

        return httpx2.AsyncClient(
            transport=self._http, auth=auth or self.target.auth, headers=headers,
            timeout=timeout or httpx2.Timeout(self.target.timeout, read=300.0),
            event_hooks={"response": [seen]},
        )

    def _open(self, transport: Transport) -> AbstractAsyncContextManager[Any]:
        if transport == "sse":
            return sse_client(self.target.url, timeout=CONNECT_TIMEOUT, httpx_client_factory=self._client)
        return streamable_http_client(self.target.url, http_client=self._client(), max_sse_event_size=MAX_BODY)

    async def _run(self, transport: Transport) -> None:
        reason = "the server closed the connection"
        try:
            async with self._open(transport) as (read, write):
                self._write = write
                self._ready.set()
                async for item in read:
                    if isinstance(item, Exception):
                        self.recent_stderr.append(f"transport: {_describe(item)[:500]}")
                        continue
                    self._received(item)
        except asyncio.CancelledError:
            reason = self._ending or "closed"
            if self._ending is None:
                raise
        except BaseException as exc:  # noqa: BLE001 - whatever ends the transport ends the channel, said why
            reason = f"lost the connection to {self.container}: {_describe(exc)[:500]}"
        finally:
            refusal = self.target.auth.refusal if isinstance(self.target.auth, HeaderAuth) else None
            self._finish(refusal if refusal and reason != (self._ending or "closed") else reason)

    def _end(self, reason: str) -> None:
        """End the channel from inside its own transport (a hook cannot raise through it)."""
        if self._ending is None and self._task is not None:
            self._ending = reason
            asyncio.get_running_loop().call_soon(self._task.cancel)


def _older_transport(channel: RemoteChannel) -> bool:
    """The first POST got a 4xx (not 401, which asks for credentials): a server of the
    HTTP+SSE transport, which takes POSTs only at the endpoint its GET names."""
    return bool(channel.statuses) and 400 <= channel.statuses[0] < 500 and channel.statuses[0] != 401


@asynccontextmanager
async def remote_mcp_session(
    target: RemoteTarget,
    *,
    timeout: float = 30.0,
    redactor: Redactor | None = None,
    label: str = "server",
    capture: Capture | None = None,
    asks: Collection[str] = (),
    ask: Ask | None = None,
) -> AsyncIterator[Session]:
    """Connect over ``target.transport`` (falling back to HTTP+SSE, see ``RemoteTarget``),
    initialize in either protocol era, and yield the session (``mcp_session``'s terms)."""
    redactor = redactor or Redactor()
    transports: list[Transport] = [target.transport] if target.transport == "sse" else ["streamable-http", "sse"]
    for transport in transports:
        channel = RemoteChannel(target)
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(channel.aclose)
            entered = False
            try:
                client = await _handshake(stack, channel, transport, timeout, capture, asks, ask)
                channel.protocol_version = client.protocol_version
                entered = True
                yield Session(channel, client, frozenset(asks))  # type: ignore[arg-type]
                return
            except Exception as exc:
                if entered:
                    raise
                if transport == "streamable-http" and len(transports) > 1 and _older_transport(channel):
                    continue
                reason = channel.close_reason if channel.closed.is_set() and channel.close_reason != "closed" \
                    else _describe(exc)
                raise ServerUnavailable(f"{label} at {target.origin} failed to start an MCP session "
                                        f"({redactor.redact(reason)[:800]})") from None


async def _handshake(stack: contextlib.AsyncExitStack, channel: RemoteChannel, transport: Transport, timeout: float,
                     capture: Capture | None, asks: Collection[str], ask: Ask | None) -> Any:
    async def watchdog() -> None:
        await asyncio.sleep(timeout)
        channel.recent_stderr.append(f"no answer to MCP initialize within {timeout:g}s")
        await channel.aclose()

    guard = asyncio.create_task(watchdog())
    try:
        await channel.start(transport)
        if channel.closed.is_set():
            raise ServerUnavailable(channel.close_reason)
        tapped = _Tapped(channel, capture) if capture is not None else channel  # type: ignore[arg-type]
        return await _connect(stack, tapped, asks, ask)
    finally:
        guard.cancel()
