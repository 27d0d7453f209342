"""A loopback HTTP proxy that adds one agent's bearer token to every request it forwards.

The conformance suite connects to a URL and sends no credentials; the gateway refuses
anything without an agent's token. The proxy changes nothing else: Host and Origin reach
the gateway as the suite sent them (so the suite's DNS rebinding scenario still tests the
gateway, which must list the proxy's address in ``gateway.allowed_hosts``), and answers,
SSE streams included, flow back as they arrive.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import httpx2
import uvicorn

HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade",
                        b"proxy-authorization", b"proxy-connection", b"content-length", b"authorization"})


class AuthProxy:
    """Forwards ``http://127.0.0.1:<port>/...`` to ``upstream/...`` with ``Authorization``."""

    def __init__(self) -> None:
        self._authorization = b""
        self._upstream = ""
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))  # bound now: the gateway must know the port before it starts
        self.port: int = self._sock.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._client: httpx2.AsyncClient | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, upstream: str, token: str) -> AuthProxy:
        self._upstream, self._authorization = upstream.rstrip("/"), f"Bearer {token}".encode()
        config = uvicorn.Config(self._app, interface="asgi3", proxy_headers=False, server_header=False, date_header=False, log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), name="auth-proxy", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the auth proxy did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
        self._sock.close()

    async def _serve(self) -> None:
        assert self._server is not None
        try:
            await self._server.serve(sockets=[self._sock])
        finally:
            if self._client is not None:
                await self._client.aclose()

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k, v) for k, v in scope["headers"] if k not in HOP_BY_HOP]
        headers.append((b"authorization", self._authorization))
        query = f"?{scope['query_string'].decode('latin-1')}" if scope["query_string"] else ""
        if self._client is None:  # one client, made on the proxy's loop (a client per request costs ~30 ms)
            self._client = httpx2.AsyncClient(timeout=httpx2.Timeout(30.0, read=None))
        request = self._client.build_request(scope["method"], f"{self._upstream}{scope['path']}{query}",
                                             headers=headers, content=body)
        try:
            answer = await self._client.send(request, stream=True)
        except httpx2.HTTPError as exc:
            await _reply(send, 502, str(exc).encode())
            return
        try:
            await send({"type": "http.response.start", "status": answer.status_code,
                        "headers": [(k.lower(), v) for k, v in answer.headers.raw
                                    if k.lower() not in HOP_BY_HOP - {b"content-length"}]})
            # A closed stream on the suite's side ends the upstream one too, as a direct
            # connection would: the gateway sees the disconnect.
            pump = asyncio.ensure_future(_pump(answer, send))
            gone = asyncio.ensure_future(_disconnected(receive))
            await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
            for task in (pump, gone):
                task.cancel()
        finally:
            await answer.aclose()


async def _pump(answer: httpx2.Response, send: Any) -> None:
    async for chunk in answer.aiter_raw():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _disconnected(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _reply(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
