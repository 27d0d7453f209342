"""A small asyncio client for the Docker Engine API's streaming endpoints.

docker-py is synchronous and cannot hand back a hijacked attach connection to an event
loop, so the streams the console watches live (attach, logs, stats, events) go through
this instead. It speaks plain HTTP/1.1 over whatever socket the engine listens on — the
local unix socket, a TCP endpoint, or a remote engine's socket forwarded over SSH — so
local and remote toolboxes share one code path.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from console.errors import TbxError
from console.runtime.engine import default_endpoint

STDOUT, STDERR = 1, 2
_READ_LIMIT = 16 * 1024 * 1024


class EngineError(TbxError):
    """The engine refused a request or could not be reached."""


@dataclass(frozen=True)
class Endpoint:
    url: str

    @classmethod
    def parse(cls, url: str | None) -> Endpoint:
        return cls(url or default_endpoint())

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        parts = urlsplit(self.url)
        try:
            if parts.scheme in ("unix", "http+unix"):
                return await asyncio.open_unix_connection(parts.path, limit=_READ_LIMIT)
            if parts.scheme in ("tcp", "http"):
                return await asyncio.open_connection(parts.hostname, parts.port or 2375, limit=_READ_LIMIT)
        except OSError as exc:
            raise EngineError(
                f"cannot reach the Docker engine at {self.url}: {exc.strerror or exc}; "
                f"is dockerd running? ('tbx doctor' checks)"
            ) from None
        raise EngineError(f"unsupported engine endpoint {self.url!r}: use unix:///path or tcp://host:port")


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @property
    def chunked(self) -> bool:
        return self.headers.get("transfer-encoding", "").lower() == "chunked"

    async def body_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (chunked or length-delimited or until EOF)."""
        if self.chunked:
            while True:
                size_line = await self.reader.readline()
                if not size_line:
                    return
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    await self.reader.readline()
                    return
                data = await self.reader.readexactly(size)
                await self.reader.readexactly(2)
                yield data
        elif "content-length" in self.headers:
            remaining = int(self.headers["content-length"])
            while remaining > 0:
                data = await self.reader.read(min(remaining, 65536))
                if not data:
                    return
                remaining -= len(data)
                yield data
        else:
            while data := await self.reader.read(65536):
                yield data

    async def read_body(self) -> bytes:
        return b"".join([chunk async for chunk in self.body_chunks()])

    def close(self) -> None:
        self.writer.close()


async def request(
    endpoint: Endpoint,
    method: str,
    path: str,
    query: dict[str, str | int] | None = None,
    *,
    upgrade: bool = False,
) -> Response:
    reader, writer = await endpoint.connect()
    target = path + ("?" + urlencode(query) if query else "")
    head = [f"{method} {target} HTTP/1.1", "Host: docker", "User-Agent: toolbox-console"]
    if upgrade:
        head += ["Connection: Upgrade", "Upgrade: tcp"]
    if method in ("POST", "PUT"):
        head.append("Content-Length: 0")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("ascii"))
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        writer.close()
        raise EngineError(f"the Docker engine at {endpoint.url} closed the connection")
    _version, status, reason = (status_line.decode("latin-1").rstrip("\r\n").split(" ", 2) + [""])[:3]
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        key, _sep, value = line.decode("latin-1").partition(":")
        headers[key.strip().lower()] = value.strip()
    return Response(int(status), reason, headers, reader, writer)


async def expect_ok(response: Response, what: str) -> Response:
    """Raise a one-line EngineError for an error status, with the engine's message."""
    if response.status < 300:
        return response
    body = await response.read_body()
    response.close()
    try:
        message = json.loads(body).get("message", "")
    except (ValueError, AttributeError):
        message = body.decode("utf-8", "replace").strip()
    raise EngineError(f"{what} failed: {message or response.reason} (HTTP {response.status})")


def container_path(container: str, action: str) -> str:
    return f"/containers/{quote(container, safe='')}/{action}"


async def demux(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    """Split Docker's multiplexed stream (8-byte header: stream, 0, 0, 0, size) into frames."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= 8:
            stream, size = buffer[0], struct.unpack(">I", buffer[4:8])[0]
            if len(buffer) < 8 + size:
                break
            yield stream, buffer[8 : 8 + size]
            buffer = buffer[8 + size :]


async def json_lines(response: Response) -> AsyncIterator[dict]:
    """Decode a stream of JSON objects (stats, events), one per line."""
    buffer = b""
    async for chunk in response.body_chunks():
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)


async def get_json(endpoint: Endpoint, path: str, query: dict[str, str | int] | None = None, what: str = "") -> Any:
    response = await expect_ok(await request(endpoint, "GET", path, query), what or f"GET {path}")
    try:
        return json.loads(await response.read_body())
    finally:
        response.close()


async def inspect(endpoint: Endpoint, container: str) -> dict[str, Any] | None:
    response = await request(endpoint, "GET", container_path(container, "json"))
    if response.status == 404:
        response.close()
        return None
    await expect_ok(response, f"inspecting container {container[:12]}")
    try:
        return json.loads(await response.read_body())
    finally:
        response.close()


async def containers_with_labels(endpoint: Endpoint, labels: list[str]) -> list[dict[str, Any]]:
    query = {"all": 1, "filters": json.dumps({"label": labels})}
    return await get_json(endpoint, "/containers/json", query, "listing containers")
