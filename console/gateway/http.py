"""The Streamable HTTP transport (MCP 2025-11-25) as a plain ASGI app.

It turns ASGI into pipeline calls and back: the Host header (DNS rebinding) and Origin
(browsers) are checked before anything else, ``/healthz`` included; the body is read
against a size cap and a deadline; an agent that hangs up mid-call cancels its call.
Every refusal is a JSON body with the right status; nothing a client sends can take the
gateway down for the other agents.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from console import __version__
from console.gateway import era2026
from console.gateway import jsonrpc as rpc
from console.gateway.exchange import Exchange, Refused, Reply
from console.gateway.pipeline import Pipeline
from console.gateway.sessions import AgentSession

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

log = logging.getLogger(__name__)
_SERVER_PATH = re.compile(r"^/servers/([a-z0-9][a-z0-9-]{0,39})/mcp/?$")
JSON_HEADERS = [(b"content-type", b"application/json")]
KEEPALIVE_SECONDS = 15.0
WATCH_AFTER_SECONDS = 0.05
"""How long a POST runs before the gateway watches for its client hanging up."""


async def respond(send: Send, reply: Reply) -> None:
    headers = [*reply.headers, (b"content-length", str(len(reply.body)).encode())]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


def plain_refusal(status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> Reply:
    return Reply(status, rpc.error(None, rpc.INVALID_REQUEST, message), [*JSON_HEADERS, *(headers or [])])


class Admission:
    """Who may talk to the gateway at all: the Host and Origin a request may carry."""

    def __init__(self) -> None:
        self.hosts: set[str] = set()
        self.origins: set[str] = set()

    def refusal(self, headers: dict[bytes, bytes]) -> tuple[str, Reply] | None:
        host = headers.get(b"host", b"").decode("latin-1").lower()
        if host not in self.hosts:
            return "bad-host", plain_refusal(421, f"Host {host[:100]!r} is not this gateway's (DNS rebinding protection)")
        origin = headers.get(b"origin")
        if origin is not None and origin.decode("latin-1").lower() not in self.origins:
            return "bad-origin", plain_refusal(403, "requests from this Origin are not allowed")
        return None


class McpHttpApp:
    def __init__(self, pipeline: Pipeline, admission: Admission, *, toolbox: str, max_body_bytes: int,
                 body_timeout: float) -> None:
        self.pipeline = pipeline
        self.admission = admission
        self.toolbox = toolbox
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.control: Any = None
        """The owner's door (``approvals_http.ApprovalControl``): its paths go there, not to MCP."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        refused = self.admission.refusal(headers)
        if refused is not None:
            self.pipeline.unauthenticated[refused[0]] += 1
            await respond(send, refused[1])
            return
        path = scope["path"]
        if path == "/healthz":
            await respond(send, Reply(200, rpc.dumps({"ok": True, "version": __version__, "toolbox": self.toolbox}),
                                      JSON_HEADERS))
            return
        if self.control is not None and self.control.handles(path):
            try:
                await self.control(scope, headers, receive, send)
            except Exception:  # as for MCP requests: a bug costs one request
                log.exception("approvals request failed")
                with contextlib.suppress(Exception):
                    await respond(send, plain_refusal(500, "internal error"))
            return
        if path in ("/mcp", "/mcp/"):
            endpoint = None
        elif match := _SERVER_PATH.match(path):
            endpoint = match.group(1)
        else:
            await respond(send, Reply(404, rpc.dumps({"error": "not found: the MCP endpoint is /mcp"}), JSON_HEADERS))
            return
        try:
            await self._mcp(scope, headers, receive, send, endpoint)
        except Exception:  # a bug must cost one request, never the gateway or a traceback to the client
            log.exception("request failed")
            with contextlib.suppress(Exception):
                await respond(send, plain_refusal(500, "internal error"))

    async def _mcp(self, scope: Scope, headers: dict[bytes, bytes], receive: Receive, send: Send,
                   endpoint: str | None) -> None:
        x = self.pipeline.exchange(endpoint, headers)
        method = scope["method"]
        if (duplicate := era2026.duplicated(scope["headers"], headers)) is not None:
            self.pipeline.unauthenticated[duplicate.reason] += 1
            await respond(send, x.refuse(duplicate))
        elif method == "POST":
            await self._post(x, receive, send)
        elif era2026.header_version(headers) in era2026.VERSIONS:
            # 2026-07-28 has no standing stream and no session to delete: subscriptions/listen is a POST.
            self.pipeline.unauthenticated["bad-http-method"] += 1
            await respond(send, plain_refusal(405, f"2026-07-28 is spoken in POSTs only, not {method}",
                                              [(b"allow", b"POST")]))
        elif method == "GET":
            if "text/event-stream" not in headers.get(b"accept", b"").decode("latin-1"):
                await respond(send, plain_refusal(406, "GET opens an event stream: send Accept: text/event-stream"))
                return
            session = await self.pipeline.stream(x)
            if session is None:
                await respond(send, x.reply)  # type: ignore[arg-type]
                return
            try:
                await self._stream(session, receive, send)
            finally:
                self.pipeline.stream_closed(session)
        elif method == "DELETE":
            await respond(send, await self.pipeline.delete(x))
        else:
            self.pipeline.unauthenticated["bad-http-method"] += 1
            await respond(send, plain_refusal(405, f"method {method} is not allowed here",
                                              [(b"allow", b"GET, POST, DELETE")]))

    async def _post(self, x: Exchange, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        clock = _RequestClock(task, receive, self.body_timeout)

        async def read_body() -> bytes:
            self._check_post_headers(x.headers)
            try:
                return await self._read_body(receive)
            except asyncio.CancelledError:
                if not clock.late:
                    raise
                task.uncancel()
                raise Refused(f"the request body did not arrive within {self.body_timeout:g}s", status=408,
                              reason="body-timeout") from None
            finally:
                clock.body_read()

        accept = x.headers.get(b"accept", b"")
        events = x.events = _Events(send, self.pipeline) if b"text/event-stream" in accept else None
        try:
            reply = await self.pipeline.post(x, read_body)
        except asyncio.CancelledError:
            if events is not None:
                events.abandon()
            if not clock.hung_up:
                raise
            task.uncancel()
            return  # the agent hung up: its call was cancelled upstream and recorded
        finally:
            clock.stop()
        if x.listening is not None:
            try:
                await self._stream(x.listening, receive, send, self.pipeline.listener.framed)
            finally:
                self.pipeline.listen_closed(x.listening)
        elif events is not None:
            await events.finish(reply)
        else:
            await respond(send, reply)

    @staticmethod
    def _check_post_headers(headers: dict[bytes, bytes]) -> None:
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type != b"application/json":
            raise Refused("send the JSON-RPC message as Content-Type: application/json", status=415,
                          reason="bad-content-type")
        accept = headers.get(b"accept", b"*/*").decode("latin-1")
        if not any(kind in accept for kind in ("application/json", "text/event-stream", "*/*")):
            raise Refused("accept application/json (and text/event-stream) responses", status=406,
                          reason="bad-accept")

    async def _read_body(self, receive: Receive) -> bytes:
        limit = self.max_body_bytes
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Refused("the client went away before sending the whole body", status=400,
                              reason="client-disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise Refused(f"the request body is over {limit} bytes", status=413, reason="body-too-large")
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _stream(self, session: AgentSession, receive: Receive, send: Send,
                      frame: Callable[[AgentSession, bytes], bytes | None] | None = None) -> None:
        """Server-to-client messages (``*/list_changed``) as an SSE stream, masked;
        ``frame`` words (or drops) each one for a ``subscriptions/listen`` stream, whose
        session lives as long as the stream does."""
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]})
        await send({"type": "http.response.body", "body": b": stream open\n\n", "more_body": True})
        gone = asyncio.ensure_future(_hang_up(receive))
        ended = asyncio.ensure_future(session.ended.wait())
        try:
            while not gone.done() and not session.ended.is_set():
                getter = asyncio.ensure_future(session.outbox.get())
                done, _ = await asyncio.wait({getter, gone, ended}, timeout=KEEPALIVE_SECONDS,
                                             return_when=asyncio.FIRST_COMPLETED)
                if frame is not None:
                    session.last_seen = time.monotonic()
                if getter in done:
                    raw = getter.result() if frame is None else frame(session, getter.result())
                    if raw is None:
                        continue
                    message, _found = self.pipeline.snapshots.current.redactor.mask_json(raw)
                    payload = b"event: message\ndata: " + message + b"\n\n"
                else:
                    getter.cancel()
                    payload = b": keepalive\n\n"
                if gone.done() or session.ended.is_set():
                    break
                await send({"type": "http.response.body", "body": payload, "more_body": True})
        finally:
            ended.cancel()
            gone.cancel()
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})


def _event(message: bytes) -> bytes:
    return b"event: message\ndata: " + message + b"\n\n"


class _Events:
    """A POST's response as an event stream (SSE), begun by the first message about the
    request before its reply (progress): a request that streams nothing is answered
    with plain JSON, as fast as before. Messages are masked like every reply; a client
    slower than its server loses the oldest (progress is advisory), never the reply."""

    LIMIT = 256

    def __init__(self, send: Send, pipeline: Pipeline) -> None:
        self._send, self._pipeline = send, pipeline
        self._queue: deque[bytes] = deque(maxlen=self.LIMIT)
        self._pump: asyncio.Task[None] | None = None
        self.started = False
        self.finished = False

    def __call__(self, message: bytes) -> None:
        if self.finished:
            return  # about a call that outlived this response (it waits for input): not ours to say
        self._queue.append(message)
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self._queue:
            message, _found = self._pipeline.snapshots.current.redactor.mask_json(self._queue.popleft())
            if not self.started:
                self.started = True
                await self._send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no")]})
            await self._send({"type": "http.response.body", "body": _event(message), "more_body": True})

    async def finish(self, reply: Reply) -> None:
        self.finished = True
        if self._pump is not None:
            with contextlib.suppress(Exception):
                await self._pump
        if not self.started:
            await respond(self._send, reply)
            return
        await self._send({"type": "http.response.body", "body": _event(reply.body), "more_body": False})

    def abandon(self) -> None:
        if self._pump is not None:
            self._pump.cancel()


async def _hang_up(receive: Receive) -> None:
    """Returns when the client goes away."""
    while (await receive())["type"] != "http.disconnect":
        pass


class _RequestClock:
    """One timer per request, not a task: the body must arrive within ``body_timeout``, and
    a request still running after ``WATCH_AFTER_SECONDS`` starts watching for its client
    hanging up (most calls end sooner, so most never need the watching task)."""

    def __init__(self, task: asyncio.Task[Any], receive: Receive, body_timeout: float) -> None:
        self._task, self._receive, self._body_timeout = task, receive, body_timeout
        self._loop = asyncio.get_running_loop()
        self._started = self._loop.time()
        self._reading = True
        self._finished = False
        self._watcher: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(WATCH_AFTER_SECONDS, self._tick)
        self.late = False
        """The body did not arrive in time (the task was cancelled for it)."""
        self.hung_up = False
        """The client went away mid-request (the task was cancelled for it)."""

    def _tick(self) -> None:
        self._timer = None
        if not self._reading:
            self._watch()
            return
        left = self._body_timeout - (self._loop.time() - self._started)
        if left <= 0:
            self.late = True
            self._task.cancel()
        else:
            self._timer = self._loop.call_later(min(left, 1.0), self._tick)

    def body_read(self) -> None:
        self._reading = False
        if self._timer is None and not self._finished:
            self._watch()  # the body took longer than the watch delay: watch from now

    def _watch(self) -> None:
        if self._watcher is None and not self._finished:
            self._watcher = self._loop.create_task(self._wait_for_hang_up())

    async def _wait_for_hang_up(self) -> None:
        await _hang_up(self._receive)
        if not self._finished:
            self.hung_up = True
            self._task.cancel()

    def stop(self) -> None:
        self._finished = True
        if self._timer is not None:
            self._timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()
