"""Gateway benchmark: tool calls to mcp-server-time, direct vs through the gateway, this
code against a baseline commit, side by side in one run.

Each side (``before`` = a git worktree of ``--baseline``, ``after`` = this checkout) gets
its own vault, its own `time` container (cpus=2, so the path is measured, not the
catalog's 0.5 CPU cap) and its own `tbx gateway serve` process with the audit on. Rounds
alternate between the sides so machine drift hits both alike.

1. Latency, one session: the mcp SDK client (direct = SDK over the attach stream; gateway
   = SDK over Streamable HTTP as an agent) and a thin raw-protocol client (the path alone).
   p50 and p99 per call. Aim: SDK through the gateway <= 1.5x direct.
2. Gateway CPU per call: the gateway process's user+system time over the thin client's
   calls, divided by their number. Aim: <= 0.5 ms.
3. Throughput, 32 concurrent sessions, thin load generators.
4. Progress streaming on and off, one session (httpx): a call without a progress token
   (plain JSON) and with one, to `time` (nothing to stream: the token is only swapped)
   and to server-everything's long-running operation with 0 s and 5 steps (five progress
   events, then the result, as an event stream). The baseline strips the token, so its
   "on" rows answer plain JSON without progress.

Run: .venv/bin/python bench/gateway.py [--baseline REF]   (needs the test environment)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TBX_BASE_IMAGE", "tbx-base:test")
os.environ.setdefault("TBX_CACHE_DIR", str(REPO / ".testenv/cache"))

import httpx2  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from bench.baseline import worktree  # noqa: E402
from console.runtime.attach import StdioChannel, attached  # noqa: E402
from console.runtime.enginehttp import Endpoint  # noqa: E402
from console.runtime.transport import channel_transport  # noqa: E402

PASSPHRASE = "bench-passphrase-not-secret"
CALLS = int(os.environ.get("BENCH_CALLS", "2000"))
ROUNDS = 4
PROGRESS_CALLS = int(os.environ.get("BENCH_PROGRESS_CALLS", "400"))
SESSIONS = 32
THROUGHPUT_SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))
ARGS = {"timezone": "UTC"}
DEFAULT_BASELINE = "dc8ad4b"
"""The last landing before the gateway became one pipeline (issue 11)."""

SETUP = """
import json, sys
from console.catalog import load_catalog
from console.model import Limits
from console.paths import resolve_paths
from console.services import servers, toolboxes
from console.services.tools import approve
from console.vault import KeySource
from console.workspace import Workspace
ws = Workspace.create(resolve_paths(), KeySource(passphrase=sys.argv[1]))
toolboxes.add_local(ws, "local")
entry = load_catalog(ws.paths).get("time")
server = servers.add_server(ws, "local", entry, limits=Limits(cpus=2.0, memory_mb=entry.limits.memory_mb,
                                                               pids=entry.limits.pids))
approve(ws, "local", "time")
everything = load_catalog(ws.paths).get("everything")
servers.add_server(ws, "local", everything, limits=Limits(cpus=2.0, memory_mb=everything.limits.memory_mb,
                                                          pids=everything.limits.pids))
approve(ws, "local", "everything")
print(json.dumps({"server": server.id}))
"""
AGENTS = """
import json, sys
from console.paths import resolve_paths
from console.services import agents, grants
from console.services.grants import Target
from console.workspace import Workspace
ws = Workspace.open(resolve_paths())
tokens = []
for i in range(int(sys.argv[1])):
    _agent, token = agents.add_agent(ws, f"bench-{i}")
    grants.grant(ws, f"bench-{i}", Target.parse("local"))
    grants.grant(ws, f"bench-{i}", Target.parse("local/time/get_current_time"))
    grants.grant(ws, f"bench-{i}", Target.parse("local/everything/trigger-long-running-operation"))
    tokens.append(token)
print(json.dumps(tokens))
"""


@dataclass
class Side:
    label: str
    code: Path
    home: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tbx-bench-gw-")))
    tokens: list[str] = field(default_factory=list)
    container: str = ""
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    sdk_direct: list[float] = field(default_factory=list)
    sdk_gateway: list[float] = field(default_factory=list)
    thin_direct: list[float] = field(default_factory=list)
    thin_gateway: list[float] = field(default_factory=list)
    cpu_per_call: list[float] = field(default_factory=list)
    rate_direct: list[float] = field(default_factory=list)
    rate_gateway: list[float] = field(default_factory=list)
    progress: dict[str, list[float]] = field(default_factory=dict)
    """Progress mode row -> call latencies."""

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "TBX_HOME": str(self.home), "TBX_PASSPHRASE": PASSPHRASE, "PYTHONPATH": str(self.code)}

    def run(self, script: str, *args: str) -> str:
        done = subprocess.run([sys.executable, "-c", script, *args], cwd=self.code, env=self.env,
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise SystemExit(f"{self.label}: setup failed: {done.stderr[-2000:]}")
        return done.stdout.strip().splitlines()[-1]

    def setup(self) -> None:
        server = json.loads(self.run(SETUP, PASSPHRASE))["server"]
        self.tokens = json.loads(self.run(AGENTS, str(SESSIONS)))
        import docker

        self.container = docker.from_env().containers.list(filters={"label": f"io.tbx.server={server}"})[0].id

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "console", "gateway", "serve", "--port", "0"],
                                     cwd=self.code, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        state = self.home / "state" / "gateway-local.json"
        deadline = time.monotonic() + 60
        while not state.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{self.label}: gateway did not start: "
                                 f"{self.proc.stderr.read().decode() if self.proc.stderr else ''}")
            time.sleep(0.1)
        self.url = json.loads(state.read_text())["url"]
        time.sleep(1.0)  # let it connect to the server

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(15)
        for server in ("local/time", "local/everything"):
            subprocess.run([sys.executable, "-m", "console", "server", "remove", server, "--yes"], cwd=self.code,
                           env=self.env, capture_output=True, timeout=120)
        shutil.rmtree(self.home, ignore_errors=True)


def pct(samples: list[float], q: float) -> float:
    return sorted(samples)[min(len(samples) - 1, int(q * len(samples)))] * 1000


# -- the SDK client --------------------------------------------------------------------------


async def sdk_calls(client: Client, name: str, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        result = await client.call_tool(name, ARGS)
        samples.append(time.perf_counter() - started)
        assert not result.is_error
    return samples


async def sdk_round(side: Side, count: int) -> None:
    async with (
        attached(Endpoint.parse(None), side.container) as channel,
        Client(channel_transport(channel), mode="legacy") as direct,
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {side.tokens[0]}"}) as http,
        Client(streamable_http_client(f"{side.url}/mcp", http_client=http), mode="legacy") as gateway,
    ):
        await sdk_calls(direct, "get_current_time", 50)
        await sdk_calls(gateway, "time__get_current_time", 50)
        side.sdk_direct += await sdk_calls(direct, "get_current_time", count)
        side.sdk_gateway += await sdk_calls(gateway, "time__get_current_time", count)


# -- thin raw clients --------------------------------------------------------------------------


class DirectLine:
    """Raw JSON-RPC lines on a container's attach stream, answered by id."""

    def __init__(self, channel: StdioChannel, prefix: str) -> None:
        self.channel, self.prefix = channel, prefix
        self.waiting: dict[str, asyncio.Future[None]] = {}
        self.marker = f'"id":"{prefix}-'.encode()
        channel.on_stdout(self._inbound)

    def _inbound(self, line: bytes) -> None:
        start = line.find(self.marker)
        if start >= 0:
            start += 6
            future = self.waiting.pop(line[start:line.index(b'"', start)].decode(), None)
            if future is not None:
                future.set_result(None)

    async def call(self, rid: str) -> None:
        self.waiting[rid] = asyncio.get_running_loop().create_future()
        await self.channel.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                                            "params": {"name": "get_current_time", "arguments": ARGS}}).encode())
        await self.waiting[rid]


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


async def http_session(url: str, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
    status, headers, _ = await http_post(reader, writer, f"{host}:{port}", token, None, body.encode())
    assert status == 200, status
    return reader, writer, headers["mcp-session-id"]


def call_body(i: int) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                       "params": {"name": "time__get_current_time", "arguments": ARGS}}).encode()


async def thin_round(side: Side, count: int) -> None:
    async with attached(Endpoint.parse(None), side.container) as channel:
        line = DirectLine(channel, "thin")
        for i in range(count):
            started = time.perf_counter()
            await line.call(f"thin-{i}")
            side.thin_direct.append(time.perf_counter() - started)
    reader, writer, session = await http_session(side.url, side.tokens[0])
    host = side.url.removeprefix("http://")
    cpu_before = side.cpu_seconds()
    for i in range(count):
        started = time.perf_counter()
        status, _headers, payload = await http_post(reader, writer, host, side.tokens[0], session, call_body(i))
        side.thin_gateway.append(time.perf_counter() - started)
        assert status == 200 and b'"result"' in payload, payload[:200]
    side.cpu_per_call.append((side.cpu_seconds() - cpu_before) / count)
    writer.close()


async def throughput_round(side: Side, seconds: float) -> None:
    async with attached(Endpoint.parse(None), side.container) as channel:
        line = DirectLine(channel, "load")
        deadline = time.perf_counter() + seconds
        done = 0

        async def direct_caller(n: int) -> None:
            nonlocal done
            i = 0
            while time.perf_counter() < deadline:
                i += 1
                await line.call(f"load-{n}-{i}")
                done += 1

        await asyncio.gather(*(direct_caller(n) for n in range(SESSIONS)))
        side.rate_direct.append(done / seconds)
    host = side.url.removeprefix("http://")
    conns = [await http_session(side.url, token) for token in side.tokens]
    deadline = time.perf_counter() + seconds
    calls = 0

    async def gateway_caller(n: int) -> None:
        nonlocal calls
        reader, writer, session = conns[n]
        i = 0
        while time.perf_counter() < deadline:
            i += 1
            status, _headers, payload = await http_post(reader, writer, host, side.tokens[n], session, call_body(i))
            assert status == 200 and b'"result"' in payload, payload[:200]
            calls += 1

    await asyncio.gather(*(gateway_caller(n) for n in range(SESSIONS)))
    for _reader, writer, _session in conns:
        writer.close()
    side.rate_gateway.append(calls / seconds)


# -- progress streaming ---------------------------------------------------------------------------

PROGRESS_ROWS = (
    ("time, off", "time__get_current_time", ARGS, False),
    ("time, on (token swapped)", "time__get_current_time", ARGS, True),
    ("everything 5 steps, off", "everything__trigger-long-running-operation", {"duration": 0, "steps": 5}, False),
    ("everything 5 steps, on (streamed)", "everything__trigger-long-running-operation",
     {"duration": 0, "steps": 5}, True),
)


async def progress_round(side: Side, count: int) -> None:
    headers = {"Authorization": f"Bearer {side.tokens[0]}", "Accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        init = await http.post(f"{side.url}/mcp", json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
        http.headers["mcp-session-id"] = init.headers["mcp-session-id"]
        http.headers["mcp-protocol-version"] = "2025-11-25"
        for i in range(count + 20):
            for label, name, arguments, with_token in PROGRESS_ROWS:
                params: dict = {"name": name, "arguments": arguments}
                if with_token:
                    params["_meta"] = {"progressToken": f"p-{i}"}
                started = time.perf_counter()
                answer = await http.post(f"{side.url}/mcp", json={"jsonrpc": "2.0", "id": i, "method": "tools/call",
                                                                  "params": params})
                elapsed = time.perf_counter() - started
                assert answer.status_code == 200 and b'"result"' in answer.content, answer.content[:200]
                if i >= 20:  # the first calls warm up
                    side.progress.setdefault(label, []).append(elapsed)


# -- report ------------------------------------------------------------------------------------


def report(sides: list[Side], baseline: str) -> None:
    before, after = sides
    print(f"gateway benchmark: mcp-server-time (cpus=2), each gateway its own process with the audit on; "
          f"before = {baseline}, after = this checkout; {ROUNDS} alternating rounds")
    print(f"1. latency per call, one session ({CALLS} calls per side and client)")
    print(f"  {'':<34}{'p50':>9}{'p99':>9}   {'p50':>9}{'p99':>9}")
    print(f"  {'':<34}{'before':>18}   {'after':>18}")
    rows = (("SDK client, direct", "sdk_direct"), ("SDK client, through the gateway", "sdk_gateway"),
            ("thin client, direct", "thin_direct"), ("thin client, through the gateway", "thin_gateway"))
    for label, attr in rows:
        b, a = getattr(before, attr), getattr(after, attr)
        print(f"  {label:<34}{pct(b, .5):7.2f}ms{pct(b, .99):7.2f}ms   {pct(a, .5):7.2f}ms{pct(a, .99):7.2f}ms")
    for label, gw, direct in (("SDK", "sdk_gateway", "sdk_direct"), ("thin", "thin_gateway", "thin_direct")):
        ratios = [pct(getattr(s, gw), .5) / pct(getattr(s, direct), .5) for s in sides]
        print(f"  {label} gateway/direct p50: before {ratios[0]:.2f}x, after {ratios[1]:.2f}x"
              + ("  (aim <= 1.5x)" if label == "SDK" else ""))
    print(f"  after/before, through the gateway: SDK p50 {pct(after.sdk_gateway, .5) / pct(before.sdk_gateway, .5):.2f}x, "
          f"thin p50 {pct(after.thin_gateway, .5) / pct(before.thin_gateway, .5):.2f}x, "
          f"thin p99 {pct(after.thin_gateway, .99) / pct(before.thin_gateway, .99):.2f}x")
    print("2. gateway CPU per call (user+system of the gateway process over the thin client's calls)")
    for side in sides:
        print(f"  {side.label:<7} median {statistics.median(side.cpu_per_call) * 1000:.3f} ms "
              f"(rounds: {', '.join(f'{c * 1000:.3f}' for c in side.cpu_per_call)})  (aim <= 0.5 ms)")
    print(f"3. throughput, {SESSIONS} concurrent sessions, thin load generators, {THROUGHPUT_SECONDS:g} s per round")
    for side in sides:
        d, g = statistics.median(side.rate_direct), statistics.median(side.rate_gateway)
        print(f"  {side.label:<7} direct {d:6.0f}/s, gateway {g:6.0f}/s: {g / d:.0%} of direct")
    report_progress(sides)


def report_progress(sides: list[Side]) -> None:
    before, after = sides
    print(f"4. progress streaming off and on, one session, httpx ({len(after.progress[PROGRESS_ROWS[0][0]])} calls "
          f"per row and side; before strips the token: its 'on' rows stream nothing)")
    print(f"  {'':<36}{'p50':>9}{'p99':>9}   {'p50':>9}{'p99':>9}")
    print(f"  {'':<36}{'before':>18}   {'after':>18}")
    for label, *_rest in PROGRESS_ROWS:
        b, a = before.progress[label], after.progress[label]
        print(f"  {label:<36}{pct(b, .5):7.2f}ms{pct(b, .99):7.2f}ms   {pct(a, .5):7.2f}ms{pct(a, .99):7.2f}ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git ref to compare with")
    baseline = parser.parse_args().baseline
    sides = [Side("before", worktree(baseline)), Side("after", REPO)]
    try:
        for side in sides:
            side.setup()
            side.start()
        for _ in range(ROUNDS):
            for side in sides:
                asyncio.run(sdk_round(side, CALLS // ROUNDS))
                asyncio.run(thin_round(side, CALLS // ROUNDS))
                asyncio.run(progress_round(side, PROGRESS_CALLS // ROUNDS))
        for _ in range(2):
            for side in sides:
                asyncio.run(throughput_round(side, THROUGHPUT_SECONDS))
        report(sides, baseline)
    finally:
        for side in sides:
            side.stop()


if __name__ == "__main__":
    main()
