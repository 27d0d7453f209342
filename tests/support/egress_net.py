"""A small internet on loopback for the egress proxy's tests and bench.

Origins are real HTTP and HTTPS servers on 127.0.0.x (HTTPS with self-signed
certificates the client trusts one by one); a sink records the raw bytes a tunnel delivers and echoes them;
the forwarder carries TCP to the proxy's Unix socket exactly as the forwarder inside a
server's container does, so real clients (httpx) use the proxy as an ordinary HTTP proxy.
Nothing here ever contacts an address outside 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import h11

from console.egress import AllowList, EgressEvent, EgressProxy
from console.egress.addresses import Resolver
from console.egress.tunnel import pipe
from console.remote.tls import self_signed


def tls_for(folder: Path, ip: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(an origin's server context, a client context that trusts only that origin): a
    self-signed certificate for ``ip``, made as the console makes a remote gateway's."""
    cert_pem, key_pem = self_signed(ip, days=1)
    cert_file, key_file = folder / f"{ip}.crt", folder / f"{ip}.key"
    cert_file.write_text(cert_pem)
    key_file.write_text(key_pem)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    return server, ssl.create_default_context(cadata=cert_pem)


@dataclass(frozen=True)
class Seen:
    """One request as an origin received it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Origin:
    """An HTTP(S) origin on ``ip``: ``/bytes/N`` answers N bytes, POST echoes, else a greeting."""

    ip: str
    tls: ssl.SSLContext | None = None
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    _server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.ip}:{self.port}"

    async def start(self) -> Origin:
        self._server = await asyncio.start_server(self._serve, self.ip, 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request, body = await _next_request(conn, reader)
                if request is None:
                    return
                headers = {k.decode().lower(): v.decode() for k, v in request.headers.raw_items()}
                self.seen.append(Seen(request.method.decode(), request.target.decode(), headers, body))
                payload = self._answer(request.method.decode(), request.target.decode(), body)
                response = h11.Response(status_code=200, headers=[("content-length", str(len(payload)))])
                writer.write(conn.send(response) + conn.send(h11.Data(data=payload)) + conn.send(h11.EndOfMessage()))
                await writer.drain()
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, ssl.SSLError):
            return
        finally:
            writer.close()

    def _answer(self, method: str, target: str, body: bytes) -> bytes:
        if method == "POST":
            return body
        if target.startswith("/bytes/"):
            return b"x" * int(target.removeprefix("/bytes/"))
        return f"hello from {self.ip}".encode()


async def _next_request(conn: h11.Connection, reader: asyncio.StreamReader) -> tuple[h11.Request | None, bytes]:
    request, body = None, b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return request, body
        else:
            return None, b""


@dataclass
class Sink:
    """A TCP server on ``ip`` that records what each connection delivers and echoes it back."""

    ip: str
    received: list[bytearray] = field(default_factory=list)
    port: int = 0
    _server: asyncio.AbstractServer | None = None

    async def start(self) -> Sink:
        self._server = await asyncio.start_server(self._serve, self.ip, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got = bytearray()
        self.received.append(got)
        try:
            while data := await reader.read(65536):
                got += data
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


class Forwarder:
    """TCP on 127.0.0.1 to the proxy's Unix socket: the container's forwarder, on the host."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._carrying: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Forwarder:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._carrying:
            task.cancel()
        await asyncio.gather(*self._carrying, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._carrying.add(task)
        try:
            upstream = await asyncio.open_unix_connection(str(self.socket_path))
            try:
                await pipe((reader, writer), upstream, 60, lambda up, down: None)
            finally:
                upstream[1].close()
        except (OSError, asyncio.CancelledError):  # a stream callback must not end cancelled
            pass
        finally:
            self._carrying.discard(task)
            writer.close()


def table_resolver(table: Mapping[str, list[str]]) -> Resolver:
    """Names from a fixed table, so no test query ever leaves the machine."""

    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(table[host])

    return resolve


@dataclass
class Rig:
    """A started proxy, the events it emitted and a forwarder in front of it."""

    proxy: EgressProxy
    events: list[EgressEvent]
    forwarder: Forwarder

    @property
    def socket_path(self) -> Path:
        return self.proxy.socket_path

    def kinds(self) -> list[tuple[str, str, int, str]]:
        return [(e.kind, e.host, e.port, e.reason) for e in self.events]


@contextlib.asynccontextmanager
async def egress_rig(folder: Path, entries: list[str], **options: object) -> AsyncIterator[Rig]:
    """An ``EgressProxy`` named ``box/srv`` allowing ``entries``, started, with a forwarder."""
    events: list[EgressEvent] = []
    proxy = EgressProxy("box/srv", folder / "egress.sock", AllowList.parse(entries), events.append, **options)  # type: ignore[arg-type]
    await proxy.start()
    forwarder = await Forwarder(proxy.socket_path).start()
    try:
        yield Rig(proxy, events, forwarder)
    finally:
        await forwarder.close()
        await proxy.close()


async def exchange(socket_path: Path, data: bytes, timeout: float = 5) -> bytes:
    """Send ``data`` to the proxy's socket as a raw client and read until it closes."""
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(timeout):
            return await reader.read(-1)
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer (0 for none)."""
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
