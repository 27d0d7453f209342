"""The proxy's side of its client's first request: read the head, decide what it asks.

h11 parses the head (request line, header syntax, size); this module only reads what
the target means. The Host header decides nothing: only the request target's authority
is checked and connected to, and the head sent upstream names that authority again
(RFC 9112 section 3.2.2). What follows the head is never parsed here: it is piped raw to
the host the head named, so a second request on the same connection can only ever reach
that same host.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import h11

from console.egress.names import canonical_host, split_authority

MAX_HEAD = 16 * 1024
"""Bytes of request line and headers the proxy holds for one request."""

_READ = 4096
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"te", b"trailer", b"upgrade", b"host"})
_NOT_A_PROXY_REQUEST = (
    "this is an egress proxy: send http://HOST/PATH requests or CONNECT HOST:PORT"
)


class Refusal(Exception):
    """The request is refused before any host is contacted: ``status`` and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class HeadTimeout(Exception):
    """The head did not arrive in time: the connection is dropped without an answer."""


@dataclass(frozen=True)
class ProxyRequest:
    """Where the client wants to go and what to send there first."""

    connect: bool
    host: str
    port: int
    upstream_head: bytes
    """The head to send upstream (empty for CONNECT)."""
    leftover: bytes
    """Bytes the client sent after the head: the start of the body or of the tunnel."""


async def read_request(reader: asyncio.StreamReader, timeout: float) -> ProxyRequest:
    """The first request on a client connection, read within ``timeout`` seconds."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    received = 0
    try:
        async with asyncio.timeout(timeout):
            while (event := conn.next_event()) is h11.NEED_DATA:
                # Never more than one byte past the limit: h11 itself refuses what it cannot end.
                data = await reader.read(min(_READ, MAX_HEAD + 1 - received))
                received += len(data)
                conn.receive_data(data)
    except TimeoutError:
        raise HeadTimeout from None
    except h11.RemoteProtocolError as error:
        if error.error_status_hint == 431:
            raise Refusal(431, f"request head over {MAX_HEAD} bytes: send fewer or smaller headers") from None
        raise Refusal(400, "malformed request head") from None
    if not isinstance(event, h11.Request):
        raise Refusal(400, "the connection closed before a request")
    return _interpret(event, conn.trailing_data[0])


def _interpret(request: h11.Request, leftover: bytes) -> ProxyRequest:
    if request.http_version not in (b"1.0", b"1.1"):
        raise Refusal(400, "only HTTP/1.0 and HTTP/1.1 are spoken here")
    target = request.target.decode("ascii")  # h11 admits only visible ASCII here
    if request.method == b"CONNECT":
        host, port = _target(target)
        if port is None:
            raise Refusal(400, "CONNECT needs HOST:PORT")
        return ProxyRequest(True, host, port, b"", leftover)
    if target.startswith("/") or target == "*":
        raise Refusal(405, _NOT_A_PROXY_REQUEST)
    scheme, sep, rest = target.partition("://")
    if not sep or scheme.lower() != "http":
        raise Refusal(400, "only http:// targets are forwarded: use CONNECT HOST:443 for https")
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    host, port = _target(rest[:cut])
    port = port or 80
    path = rest[cut:] if rest[cut:].startswith("/") else "/" + rest[cut:]
    head = _upstream_head(request, host, port, path)
    return ProxyRequest(False, host, port, head, leftover)


def _target(text: str) -> tuple[str, int | None]:
    if "@" in text:
        raise Refusal(400, "user information in the target is not allowed")
    try:
        host, port = split_authority(text)
        return canonical_host(host), port
    except ValueError as error:
        raise Refusal(400, f"the target host {error}") from None


def _upstream_head(request: h11.Request, host: str, port: int, path: str) -> bytes:
    named = {
        token.strip().lower()
        for name, value in request.headers
        if name == b"connection"
        for token in value.split(b",")
    }
    shown = f"[{host}]" if ":" in host else host
    lines = [
        request.method + b" " + path.encode("ascii") + b" HTTP/1.1",
        b"Host: " + (shown if port == 80 else f"{shown}:{port}").encode("ascii"),
    ]
    for raw_name, value in request.headers.raw_items():
        lower = raw_name.lower()
        if lower in _HOP_BY_HOP or lower in named or lower.startswith(b"proxy-"):
            continue
        lines.append(raw_name + b": " + value)
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"
