"""One client cannot wear the gateway down for the others.

Idle connections, half-sent requests, session floods, piles of concurrent calls and
event streams: each is bounded, and an honest agent's calls keep working throughout.
The limits are the package stack's small ones (conftest.LIMITS); bench/adversarial.py
measures the same attacks at full size (20,000 connections, 20,000 sessions).
"""

from __future__ import annotations

import asyncio
import socket
import time
from urllib.parse import urlsplit

import httpx2
import pytest

from tests.gateway.conftest import Stack
from tests.support.gateway import agent
from tests.support.rawmcp import ACCEPT, RawAgent

pytestmark = pytest.mark.docker


def address(stack: Stack) -> tuple[str, int]:
    parts = urlsplit(stack.url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``sock`` (reading EOF), or None."""
    sock.settimeout(seconds)
    started = time.monotonic()
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return time.monotonic() - started
    except TimeoutError:
        return None
    except ConnectionResetError:
        return time.monotonic() - started


def test_a_silent_connection_is_closed_after_the_header_timeout(stack: Stack) -> None:
    with socket.create_connection(address(stack)) as sock:
        assert closed_within(sock, 5) is not None


def test_half_sent_headers_are_closed(stack: Stack) -> None:
    host, port = address(stack)
    with socket.create_connection((host, port)) as sock:
        sock.sendall(f"POST /mcp HTTP/1.1\r\nHost: {host}:{port}\r\nX-Slow: ".encode())
        for _ in range(3):  # a slowloris trickle does not keep it open
            time.sleep(0.3)
            sock.sendall(b"a")
        assert closed_within(sock, 5) is not None


def test_a_half_sent_body_gets_408(stack: Stack) -> None:
    _name, token = stack.agent("local", "local/time")
    host, port = address(stack)
    with socket.create_connection((host, port)) as sock:
        sock.sendall((f"POST /mcp HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
                      f"Content-Type: application/json\r\nAccept: {ACCEPT}\r\nContent-Length: 1000\r\n\r\n"
                      '{"jsonrpc":').encode())
        sock.settimeout(5)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]


def test_a_session_flood_costs_only_the_flooder(stack: Stack) -> None:
    flooder, flood_token = stack.agent("local", "local/time")
    _honest, honest_token = stack.agent("local", "local/time")
    with RawAgent(stack.url, honest_token) as honest, RawAgent(stack.url, flood_token) as flood:
        honest.initialize()
        first = flood.initialize()
        for _ in range(50):
            flood.initialize()
        flooder_id = stack.ws.repos.agents.require(flooder).id
        assert stack.gateway.call(lambda gw: gw.sessions.of_agent(flooder_id)) == 8
        assert "result" in honest.call("time__get_current_time", {"timezone": "UTC"})
        flood.session = first
        assert flood.request("ping").status_code == 404  # its oldest session was the one to go
    stack.gateway.flush_audit()
    opens = [r for r in stack.ws.audit.records() if r.get("agent") == flooder and r["action"] == "session.open"]
    assert len(opens) == 51 and sum(r["detail"].get("evicted", 0) for r in opens) == 43


async def test_concurrent_calls_and_streams_are_capped_per_agent(stack: Stack) -> None:
    await asyncio.to_thread(stack.add_shapeshifter, "sleepy",
                            [{"name": "sleep", "description": "Sleeps.", "inputSchema": {"type": "object"}}],
                            secrets={"LEAK_VALUE": "nothing-secret-here"})
    _name, token = stack.agent("local", "local/sleepy")
    _other, other_token = stack.agent("local", "local/time")
    with RawAgent(stack.url, token) as raw:
        session = raw.initialize()
    headers = {"authorization": f"Bearer {token}", "mcp-session-id": session, "accept": ACCEPT,
               "content-type": "application/json"}

    async def slow(http: httpx2.AsyncClient, n: int) -> int:
        body = {"jsonrpc": "2.0", "id": n, "method": "tools/call",
                "params": {"name": "sleepy__sleep", "arguments": {"seconds": 1.5}}}
        return (await http.post(stack.url + "/mcp", json=body, headers=headers, timeout=10)).status_code

    async with httpx2.AsyncClient(limits=httpx2.Limits(max_connections=20)) as http:
        statuses = await asyncio.gather(*(slow(http, n) for n in range(7)))
        assert sorted(statuses) == [200] * 4 + [429] * 3
        # Another agent is not held up by this one's pile.
        async with agent(stack.url, other_token) as client:
            assert not (await client.call_tool("time__get_current_time", {"timezone": "UTC"})).is_error
        opened = [await http.send(http.build_request("GET", stack.url + "/mcp", headers=headers), stream=True)
                  for _ in range(3)]
        assert [r.status_code for r in opened] == [200, 200, 429]
        for response in opened:
            await response.aclose()


async def test_an_idle_connection_flood_leaves_honest_calls_working(stack: Stack) -> None:
    _name, token = stack.agent("local", "local/time")
    host, port = address(stack)
    latencies: list[float] = []
    async with agent(stack.url, token) as client:
        await client.call_tool("time__get_current_time", {"timezone": "UTC"})
        writers = []

        async def flood() -> None:
            for _ in range(1500):  # far more than the gateway's 200 connections
                try:
                    _reader, writer = await asyncio.open_connection(host, port)
                    writers.append(writer)
                except OSError:
                    await asyncio.sleep(0.01)

        flooding = asyncio.create_task(flood())
        while not flooding.done() or len(latencies) < 50:
            started = time.perf_counter()
            result = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
            latencies.append(time.perf_counter() - started)
            assert not result.is_error
            await asyncio.sleep(0.01)
        for writer in writers:
            writer.close()
    assert max(latencies) < 2.0, max(latencies)
    guard = stack.gateway.call(lambda gw: (gw.guard.evicted, len(gw.guard)))
    assert guard[0] > 1000 and guard[1] <= 200
