"""``tbx connect AGENT``: a stdio MCP server that relays to the gateway over HTTP.

Desktop clients that only launch stdio servers (Claude Desktop) run ``tbx connect``;
every JSON-RPC line they write is POSTed to the gateway with the agent's token, and the
answers — plus notifications from the gateway's event stream — come back on stdout.
The bridge adds no policy of its own: the gateway decides everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from typing import Any

import httpx2

from console.gateway import jsonrpc as rpc

SESSION_HEADER = "mcp-session-id"


class Bridge:
    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.headers = {"authorization": f"Bearer {token}", "accept": "application/json, text/event-stream",
                        "content-type": "application/json"}
        self.session_id: str | None = None
        self.protocol: str | None = None
        self._out = asyncio.Lock()
        self._stream: asyncio.Task[None] | None = None

    async def write(self, line: bytes) -> None:
        async with self._out:
            sys.stdout.buffer.write(line.rstrip(b"\n") + b"\n")
            sys.stdout.buffer.flush()

    def _session_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.session_id:
            headers[SESSION_HEADER] = self.session_id
        if self.protocol:
            headers["mcp-protocol-version"] = self.protocol
        return headers

    async def relay(self, client: httpx2.AsyncClient, line: bytes) -> None:
        try:
            message: Any = json.loads(line)
        except ValueError:
            await self.write(rpc.error(None, rpc.PARSE_ERROR, "not valid JSON"))
            return
        request_id = message.get("id") if isinstance(message, dict) else None
        try:
            response = await client.post(self.url, content=line, headers=self._session_headers())
        except httpx2.HTTPError as exc:
            if request_id is not None:
                await self.write(rpc.error(request_id, rpc.SERVER_UNAVAILABLE,
                                           f"the gateway at {self.url} cannot be reached: {exc}; is it running?"))
            return
        if SESSION_HEADER in response.headers and isinstance(message, dict) and message.get("method") == "initialize":
            self.session_id = response.headers[SESSION_HEADER]
            with contextlib.suppress(ValueError, KeyError, TypeError):
                self.protocol = response.json()["result"]["protocolVersion"]
            self._stream = asyncio.create_task(self.follow(client))
        if response.status_code == 202 or request_id is None:
            return
        body = response.content
        if response.headers.get("content-type", "").startswith("application/json") and body:
            if response.status_code >= 400:
                # Carry the request's id: the gateway may not have read it before refusing.
                with contextlib.suppress(ValueError, AttributeError):
                    body = rpc.dumps({**json.loads(body), "id": request_id})
            await self.write(body)
        else:
            await self.write(rpc.error(request_id, rpc.INTERNAL_ERROR, f"gateway answered HTTP {response.status_code}"))

    async def follow(self, client: httpx2.AsyncClient) -> None:
        """Relay the gateway's event stream (tools/list_changed) to stdout."""
        while self.session_id:
            try:
                async with client.stream("GET", self.url, headers={**self._session_headers(),
                                                                    "accept": "text/event-stream"},
                                         timeout=httpx2.Timeout(10.0, read=None)) as response:
                    if response.status_code != 200:
                        return
                    async for line in response.aiter_lines():
                        if line.startswith("data: "):
                            await self.write(line[6:].encode())
            except httpx2.HTTPError:
                await asyncio.sleep(1.0)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        async with httpx2.AsyncClient(timeout=httpx2.Timeout(300.0, connect=5.0)) as client:
            pending: set[asyncio.Task[None]] = set()
            while line := await reader.readline():
                if not line.strip():
                    continue
                task = asyncio.create_task(self.relay(client, line))
                pending.add(task)
                task.add_done_callback(pending.discard)
            if pending:
                await asyncio.wait(pending)
            if self._stream is not None:
                self._stream.cancel()
            if self.session_id:
                with contextlib.suppress(httpx2.HTTPError):
                    await client.delete(self.url, headers=self._session_headers())
