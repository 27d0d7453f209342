"""Gateway benchmark: tool calls to mcp-server-time, direct vs through the gateway.

Direct = over the attach transport from this process. Gateway = `tbx gateway serve` as
its own process (audit on), reached over Streamable HTTP as agents.

1. Latency, 1 session: the mcp SDK client on both sides (SDK over attach vs SDK over
   Streamable HTTP with an agent token): p50, p99, calls/s. Aim: gateway p50 <= 1.5x direct.
2. Throughput, 32 concurrent sessions: 32 agents each with its own HTTP connection and
   session, against 32 concurrent callers on the direct channel. Both sides use a thin
   raw-protocol load generator so the figure is the path's, not a client library's.
   Aim: gateway >= 70% of direct.

The server's CPU cap is lifted to 2 so the path is measured, not the cap (the catalog's
0.5 CPU for `time` throttles both sides alike above ~600 calls/s).
Run: .venv/bin/python bench/gateway.py   (needs the test environment: make test brings it up)
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TBX_BASE_IMAGE", "tbx-base:test")
os.environ.setdefault("TBX_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".testenv/cache"))

import httpx2  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from console.catalog import load_catalog  # noqa: E402
from console.model import Limits  # noqa: E402
from console.paths import resolve_paths  # noqa: E402
from console.runtime.attach import StdioChannel, attached  # noqa: E402
from console.runtime.enginehttp import Endpoint  # noqa: E402
from console.runtime.transport import channel_transport  # noqa: E402
from console.services import agents, grants, servers, toolboxes  # noqa: E402
from console.services.grants import Target  # noqa: E402
from console.services.tools import approve  # noqa: E402
from console.vault import KeySource  # noqa: E402
from console.workspace import Workspace  # noqa: E402

PASSPHRASE = "bench-passphrase-not-secret"
CALLS = int(os.environ.get("BENCH_CALLS", "2000"))
SESSIONS = 32
THROUGHPUT_SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
ARGS = {"timezone": "UTC"}


def setup() -> tuple[Workspace, list[str]]:
    os.environ["TBX_HOME"] = tempfile.mkdtemp(prefix="tbx-bench-gw-")
    os.environ["TBX_PASSPHRASE"] = PASSPHRASE
    ws = Workspace.create(resolve_paths(), KeySource(passphrase=PASSPHRASE))
    toolboxes.add_local(ws, "local")
    entry = load_catalog(ws.paths).get("time")
    servers.add_server(ws, "local", entry, limits=Limits(cpus=2.0, memory_mb=entry.limits.memory_mb,
                                                         pids=entry.limits.pids))
    approve(ws, "local", "time")
    tokens = []
    for i in range(SESSIONS):
        _agent, token = agents.add_agent(ws, f"agent-{i}")
        grants.grant(ws, f"agent-{i}", Target.parse("local"))
        grants.grant(ws, f"agent-{i}", Target.parse("local/time/get_current_time"))
        tokens.append(token)
    return ws, tokens


def start_gateway(ws: Workspace) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen([sys.executable, "-m", "console", "gateway", "serve", "--port", "0"],
                            env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = ws.paths.state_dir / "gateway-local.json"
    deadline = time.monotonic() + 60
    while not state.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"gateway did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.1)
    time.sleep(1.0)  # let it connect to the server
    return proc, json.loads(state.read_text())["url"]


def pct(samples: list[float], q: float) -> float:
    return sorted(samples)[min(len(samples) - 1, int(q * len(samples)))] * 1000


# -- 1. latency with the SDK client ------------------------------------------------------------


async def sdk_calls(client: Client, name: str, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        result = await client.call_tool(name, ARGS)
        samples.append(time.perf_counter() - started)
        assert not result.is_error
    return samples


async def latency(container: str, url: str, token: str) -> tuple[list[float], list[float]]:
    direct: list[float] = []
    gateway: list[float] = []
    async with (
        attached(Endpoint.parse(None), container) as channel,
        Client(channel_transport(channel), mode="legacy") as direct_client,
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http), mode="legacy") as gw_client,
    ):
        await sdk_calls(direct_client, "get_current_time", 100)
        await sdk_calls(gw_client, "time__get_current_time", 100)
        for _ in range(4):
            direct += await sdk_calls(direct_client, "get_current_time", CALLS // 4)
            gateway += await sdk_calls(gw_client, "time__get_current_time", CALLS // 4)
    return direct, gateway


# -- 2. throughput with thin load generators --------------------------------------------------


async def direct_throughput(channel: StdioChannel, seconds: float) -> int:
    """32 callers multiplexed on the direct channel, raw JSON lines, ids of our own."""
    waiting: dict[str, asyncio.Future[None]] = {}

    def inbound(line: bytes) -> None:
        start = line.find(b'"id":"bench-')
        if start >= 0:
            end = line.index(b'"', start + 6)
            future = waiting.pop(line[start + 6 : end].decode(), None)
            if future is not None:
                future.set_result(None)

    channel.on_stdout(inbound)
    deadline = time.perf_counter() + seconds
    done = 0

    async def caller(n: int) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < deadline:
            rid = f"bench-{n}-{i}"
            i += 1
            waiting[rid] = asyncio.get_running_loop().create_future()
            request = {"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                       "params": {"name": "get_current_time", "arguments": ARGS}}
            await channel.send(json.dumps(request).encode())
            await waiting[rid]
            done += 1

    await asyncio.gather(*(caller(n) for n in range(SESSIONS)))
    return done


async def http_session(url: str, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
    status, headers, _ = await http_post(reader, writer, f"{host}:{port}", token, None, body.encode())
    assert status == 200, status
    return reader, writer, headers["mcp-session-id"]


async def http_post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, token: str,
                    session: str | None, body: bytes) -> tuple[int, dict[str, str], bytes]:
    head = (f"POST /mcp HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
            + (f"Mcp-Session-Id: {session}\r\nMCP-Protocol-Version: 2025-11-25\r\n" if session else "")
            + f"Content-Length: {len(body)}\r\n\r\n")
    writer.write(head.encode() + body)
    status_line = await reader.readline()
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        key, _, value = line.decode().partition(":")
        headers[key.strip().lower()] = value.strip()
    payload = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, payload


async def gateway_throughput(url: str, tokens: list[str], seconds: float) -> int:
    host = url.removeprefix("http://")
    conns = [await http_session(url, token) for token in tokens]
    deadline = time.perf_counter() + seconds
    done = 0

    async def caller(n: int) -> None:
        nonlocal done
        reader, writer, session = conns[n]
        i = 0
        while time.perf_counter() < deadline:
            i += 1
            body = json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                               "params": {"name": "time__get_current_time", "arguments": ARGS}}).encode()
            status, _headers, payload = await http_post(reader, writer, host, tokens[n], session, body)
            assert status == 200 and b'"result"' in payload, payload[:200]
            done += 1

    await asyncio.gather(*(caller(n) for n in range(SESSIONS)))
    for _reader, writer, _session in conns:
        writer.close()
    return done


async def thin_latency(container: str, url: str, token: str, count: int) -> tuple[list[float], list[float]]:
    """One caller at a time, raw protocol on both sides: the path's own cost per call."""
    direct: list[float] = []
    async with attached(Endpoint.parse(None), container) as channel:
        waiting: dict[str, asyncio.Future[None]] = {}

        def inbound(line: bytes) -> None:
            start = line.find(b'"id":"thin-')
            if start >= 0:
                future = waiting.pop(line[start + 6 : line.index(b'"', start + 6)].decode(), None)
                if future is not None:
                    future.set_result(None)

        channel.on_stdout(inbound)
        for i in range(count):
            rid = f"thin-{i}"
            waiting[rid] = asyncio.get_running_loop().create_future()
            started = time.perf_counter()
            await channel.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                                           "params": {"name": "get_current_time", "arguments": ARGS}}).encode())
            await waiting[rid]
            direct.append(time.perf_counter() - started)
    reader, writer, session = await http_session(url, token)
    host = url.removeprefix("http://")
    gateway: list[float] = []
    for i in range(count):
        body = json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                           "params": {"name": "time__get_current_time", "arguments": ARGS}}).encode()
        started = time.perf_counter()
        await http_post(reader, writer, host, token, session, body)
        gateway.append(time.perf_counter() - started)
    writer.close()
    return direct, gateway


async def throughput(container: str, url: str, tokens: list[str]) -> tuple[list[float], list[float]]:
    direct, gateway = [], []
    for _ in range(3):
        async with attached(Endpoint.parse(None), container) as channel:
            direct.append(await direct_throughput(channel, THROUGHPUT_SECONDS) / THROUGHPUT_SECONDS)
        gateway.append(await gateway_throughput(url, tokens, THROUGHPUT_SECONDS) / THROUGHPUT_SECONDS)
    return direct, gateway


def main() -> None:
    ws, tokens = setup()
    ref = servers.resolve(ws, "local/time")
    import docker

    container = docker.from_env().containers.list(filters={"label": f"io.tbx.server={ref.server.id}"})[0].id
    proc, url = start_gateway(ws)
    try:
        direct, gateway = asyncio.run(latency(container, url, tokens[0]))
        print(f"gateway benchmark: mcp-server-time (cpus=2), gateway {url} as its own process, audit on")
        print(f"1. latency, 1 session, {CALLS} calls each, mcp SDK client on both sides")
        print(f"  {'':<30}{'p50':>9}{'p99':>9}{'calls/s':>10}")
        for label, samples in (("direct (attach transport)", direct), ("through the gateway", gateway)):
            print(f"  {label:<30}{pct(samples, .5):7.2f}ms{pct(samples, .99):7.2f}ms{len(samples) / sum(samples):10.0f}")
        print(f"  ratio gateway/direct: p50 {pct(gateway, .5) / pct(direct, .5):.2f}x (aim <= 1.5x), "
              f"p99 {pct(gateway, .99) / pct(direct, .99):.2f}x")
        thin_d, thin_g = asyncio.run(thin_latency(container, url, tokens[0], CALLS))
        print(f"   same, thin raw clients (the path alone): direct p50 {pct(thin_d, .5):.2f} ms, gateway p50 "
              f"{pct(thin_g, .5):.2f} ms: {pct(thin_g, .5) / pct(thin_d, .5):.2f}x; the rest of the SDK figure is "
              f"the SDK's HTTP client")
        d_rate, g_rate = asyncio.run(throughput(container, url, tokens))
        print(f"2. throughput, {SESSIONS} concurrent sessions, {THROUGHPUT_SECONDS:g} s x 3 rounds, thin load generators")
        print(f"  direct   {statistics.median(d_rate):7.0f} calls/s  (rounds: {', '.join(f'{r:.0f}' for r in d_rate)})")
        print(f"  gateway  {statistics.median(g_rate):7.0f} calls/s  (rounds: {', '.join(f'{r:.0f}' for r in g_rate)})")
        print(f"  gateway/direct: {statistics.median(g_rate) / statistics.median(d_rate):.0%}  (aim >= 70%)")
        ws.refresh()
        calls = sum(1 for r in ws.audit.records() if r["action"] == "tool.call")
        print(f"  audit records of tool calls written meanwhile: {calls}; chain "
              f"{'intact' if ws.audit.verify(ws.audit_checkpoint).ok else 'BROKEN'}")
    finally:
        proc.terminate()
        proc.wait(10)
        servers.remove_server(ws, "local/time")


if __name__ == "__main__":
    main()
