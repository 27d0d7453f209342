"""An honest agent's calls while another local process attacks the gateway.

One gateway (`tbx gateway serve`, default limits, audit on) in front of mcp-server-time.
An honest agent calls a tool over one kept-alive connection, one call after another,
for the length of each phase; we report its p50, p99 and worst latency and any failure:

  quiet      no attack (the reference)
  idle       20,000 idle TCP connections held open by attacker processes (reopened as
             the gateway closes them), plus as many half-sent requests (slowloris)
  sessions   one agent opening 20,000 sessions as fast as it can (its own process)

Also the gateway's open descriptors and resident memory at the end of each phase.
Run: .venv/bin/python bench/adversarial.py   (needs the test environment)
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TBX_BASE_IMAGE", "tbx-base:test")
os.environ.setdefault("TBX_CACHE_DIR", str(REPO / ".testenv/cache"))

from bench.gateway import call_body, http_post, http_session  # noqa: E402

PASSPHRASE = "bench-passphrase-not-secret"
PHASE_SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
IDLE_CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "20000"))
SESSIONS = int(os.environ.get("BENCH_SESSIONS", "20000"))
ATTACKERS = 2
"""Processes sharing the idle connections (each has a file limit of its own)."""

SETUP = """
import json, sys
from console.catalog import load_catalog
from console.model import Limits
from console.paths import resolve_paths
from console.services import agents, grants, servers, toolboxes
from console.services.grants import Target
from console.services.tools import approve
from console.vault import KeySource
from console.workspace import Workspace
ws = Workspace.create(resolve_paths(), KeySource(passphrase=sys.argv[1]))
toolboxes.add_local(ws, "local")
entry = load_catalog(ws.paths).get("time")
servers.add_server(ws, "local", entry, limits=Limits(cpus=2.0, memory_mb=entry.limits.memory_mb, pids=entry.limits.pids))
approve(ws, "local", "time")
tokens = {}
for name in ("honest", "flooder"):
    _agent, tokens[name] = agents.add_agent(ws, name)
    grants.grant(ws, name, Target.parse("local"))
    grants.grant(ws, name, Target.parse("local/time"))
print(json.dumps(tokens))
"""

FLOODER = """
import asyncio, json, sys, time
sys.path.insert(0, sys.argv[4])
from bench.gateway import http_post, http_session
url, token, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
host = url.removeprefix("http://")
body = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "flood", "version": "1"}}}).encode()
granted = 0

async def opener(share):
    global granted
    reader, writer, _session = await http_session(url, token)
    for _ in range(share):
        status, _headers, _payload = await http_post(reader, writer, host, token, None, body)
        granted += status == 200
    writer.close()

async def main():
    await asyncio.gather(*(opener(count // 16) for _ in range(16)))

started = time.monotonic()
asyncio.run(main())
print(granted, time.monotonic() - started)
"""
"""One agent opening sessions as fast as 16 connections let it, from a process of its own."""

ATTACKER = """
import asyncio, resource, sys, time
host, port, count, source, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
opened = closed = 0

async def hold(slow):
    global opened, closed
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
        except OSError:
            await asyncio.sleep(0.05)
            continue
        opened += 1
        if slow:
            writer.write(f"POST /mcp HTTP/1.1\\r\\nHost: {host}:{port}\\r\\nX-Slow: ".encode())
        try:
            while time.monotonic() < deadline:
                if slow:
                    writer.write(b"a")
                data = await asyncio.wait_for(reader.read(1024), 1.0 if slow else deadline - time.monotonic())
                if not data:
                    break
        except (asyncio.TimeoutError, OSError):
            pass
        closed += 1
        writer.close()

async def main():
    await asyncio.gather(*(hold(i % 2 == 1) for i in range(count)))

asyncio.run(main())
print(opened, closed)
"""


def gateway_env(home: Path) -> dict[str, str]:
    return {**os.environ, "TBX_HOME": str(home), "TBX_PASSPHRASE": PASSPHRASE, "PYTHONPATH": str(REPO)}


def start(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen([sys.executable, "-m", "console", "gateway", "serve", "--port", "0"],
                            env=gateway_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = home / "state" / "gateway-local.json"
    deadline = time.monotonic() + 60
    while not state.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"gateway did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.1)
    time.sleep(1.5)
    return proc, json.loads(state.read_text())["url"]


def footprint(pid: int) -> str:
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    return f"{fds} descriptors, {rss / 1024:.0f} MiB resident"


async def honest_calls(url: str, token: str, seconds: float) -> tuple[list[float], int]:
    """Sequential calls over one kept-alive connection; a failed call reconnects and counts."""
    host = url.removeprefix("http://")
    latencies, failures = [], 0
    deadline = time.monotonic() + seconds
    conn = await http_session(url, token)
    i = 0
    while time.monotonic() < deadline:
        i += 1
        started = time.perf_counter()
        try:
            status, _headers, payload = await asyncio.wait_for(
                http_post(conn[0], conn[1], host, token, conn[2], call_body(i)), 30)
            if status != 200 or b'"result"' not in payload:
                raise RuntimeError(f"status {status}: {payload[:120]!r}")
            latencies.append(time.perf_counter() - started)
        except Exception:  # noqa: BLE001 - every failure is counted and reported
            failures += 1
            conn[1].close()
            conn = await http_session(url, token)
    conn[1].close()
    return latencies, failures


def p99(latencies: list[float]) -> float:
    return sorted(latencies)[min(len(latencies) - 1, int(.99 * len(latencies)))] * 1000


def summary(label: str, latencies: list[float], failures: int) -> str:
    ms = sorted(x * 1000 for x in latencies)
    return (f"  {label:<10}{len(ms):>7} calls {statistics.median(ms):8.2f} ms p50 {p99(latencies):8.2f} ms p99 "
            f"{ms[-1]:8.2f} ms max   {failures} failed")


def main() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    home = Path(tempfile.mkdtemp(prefix="tbx-bench-adv-"))
    made = subprocess.run([sys.executable, "-c", SETUP, PASSPHRASE], env=gateway_env(home), capture_output=True,
                          text=True, timeout=600)
    if made.returncode:
        raise SystemExit(made.stderr[-2000:])
    tokens = json.loads(made.stdout.strip().splitlines()[-1])
    proc, url = start(home)
    host, port = url.removeprefix("http://").split(":")
    print(f"adversarial benchmark: gateway {url} (default limits, audit on), mcp-server-time; "
          f"{PHASE_SECONDS:g} s per phase; the honest agent calls one tool at a time")
    try:
        rows, tails = [], {}
        latencies, failures = asyncio.run(honest_calls(url, tokens["honest"], PHASE_SECONDS))
        rows.append(summary("quiet", latencies, failures) + f"   gateway: {footprint(proc.pid)}")
        tails["quiet"] = p99(latencies)

        share = IDLE_CONNECTIONS // ATTACKERS
        attackers = [subprocess.Popen([sys.executable, "-c", ATTACKER, host, port, str(share), f"127.0.0.{2 + n}",
                                       str(PHASE_SECONDS + 5)], stdout=subprocess.PIPE, text=True)
                     for n in range(ATTACKERS)]
        time.sleep(3)  # let them connect
        latencies, failures = asyncio.run(honest_calls(url, tokens["honest"], PHASE_SECONDS))
        during = footprint(proc.pid)
        opened = [a.communicate(timeout=120)[0].split() for a in attackers]
        total_opened = sum(int(o[0]) for o in opened if o)
        rows.append(summary("idle", latencies, failures) + f"   gateway: {during}; attackers opened "
                    f"{total_opened} connections in all (half idle, half slowloris)")
        tails["idle"] = p99(latencies)

        flooder = subprocess.Popen([sys.executable, "-c", FLOODER, url, tokens["flooder"], str(SESSIONS), str(REPO)],
                                   stdout=subprocess.PIPE, text=True)
        latencies, failures = asyncio.run(honest_calls(url, tokens["honest"], PHASE_SECONDS))
        flooded = flooder.communicate(timeout=300)[0].split()
        granted, took = int(flooded[0]), float(flooded[1])
        rows.append(summary("sessions", latencies, failures) + f"   gateway: {footprint(proc.pid)}; "
                    f"{granted} sessions opened in {took:.1f} s")
        tails["sessions"] = p99(latencies)
        print("\n".join(rows))
        print(f"  honest p99 under attack / quiet: idle connections {tails['idle'] / tails['quiet']:.2f}x, "
              f"session flood {tails['sessions'] / tails['quiet']:.2f}x")
    finally:
        proc.terminate()
        proc.wait(30)
        subprocess.run([sys.executable, "-m", "console", "server", "remove", "local/time", "--yes"],
                       env=gateway_env(home), capture_output=True, timeout=120)


if __name__ == "__main__":
    main()
