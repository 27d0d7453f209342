"""The gateway's own request path, in-process: CPU per tools/call with the upstream faked.

The ASGI app is called directly (no sockets, no server container), the upstream answers
at once with a real mcp-server-time result, and the audit writer runs as in production.
So the figure is what the gateway's Python costs per call — authenticate, parse, session,
authorize, check, forward, mask, record — without the noise of the network and the
server. This checkout against a baseline commit (a worktree, see bench/gateway.py), each
in its own process, alternated; the minimum of the rounds is the least-disturbed figure.

Run: .venv/bin/python bench/gateway_path.py [--baseline REF]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.gateway import DEFAULT_BASELINE, worktree  # noqa: E402

CALLS = int(os.environ.get("BENCH_CALLS", "20000"))
ROUNDS = 5

HARNESS = r'''
import asyncio, json, os, sys, tempfile, time
os.environ["TBX_HOME"] = tempfile.mkdtemp(prefix="tbx-bench-path-")
os.environ["TBX_PASSPHRASE"] = "bench-passphrase-not-secret"
from console.paths import resolve_paths
from console.vault import KeySource
from console.workspace import Workspace
from console.services import agents, grants, toolboxes
from console.services.grants import Target
from console.model import DesiredState, ServerInstance, ToolDef, Trust, tool_pin
from console.gateway.forwarder import RawResponse
from console.gateway.service import Gateway

ws = Workspace.create(resolve_paths(), KeySource(passphrase=os.environ["TBX_PASSPHRASE"]))
box = toolboxes.add_local(ws, "local")
server = ServerInstance(toolbox=box.id, name="time", desired_state=DesiredState.RUNNING)
schema = {"type": "object", "properties": {"timezone": {"type": "string"}}}
pin = tool_pin("get_current_time", "Get the current time.", schema, None, None)
with ws.change() as change:
    change.repos.servers.put(server)
    change.repos.tools.put(ToolDef(server=server.id, name="get_current_time", description="Get the current time.",
                                   input_schema=schema, pin=pin, approved_pin=pin, trust=Trust.APPROVED))
_agent, token = agents.add_agent(ws, "bench")
grants.grant(ws, "bench", Target.parse("local"))
grants.grant(ws, "bench", Target.parse("local/time"))

RESULT = (b'{"jsonrpc":"2.0","id":"ID","result":{"content":[{"type":"text","text":"{\\n  \\"timezone\\": \\"UTC\\",'
          b'\\n  \\"datetime\\": \\"2026-12-06T09:00:00+00:00\\",\\n  \\"is_dst\\": false\\n}"}],"isError":false}}')
SPAN = (RESULT.index(b'"ID"'), RESULT.index(b'"ID"') + 4)


class Upstream:
    alive = True
    verified_generation = 0

    async def request(self, method, params, timeout, track=None):
        if track:
            track(1)
        return RawResponse(RESULT, SPAN)

    async def cancel(self, number, reason):
        pass


gw = Gateway(Workspace.open(resolve_paths()), "local", port=0)
upstream = Upstream()
upstream.forwarder = upstream
if hasattr(gw, "upstreams"):  # the pipeline
    async def ready(server_id):
        return upstream
    gw.upstreams.ready = ready
    gw.admission.hosts = {"127.0.0.1:1"}
else:  # before it: one Gateway object
    gw._forwarders[server.id] = upstream
    gw.allowed_hosts = {"127.0.0.1:1"}
HEADERS = [(b"host", b"127.0.0.1:1"), (b"authorization", f"Bearer {token}".encode()),
           (b"content-type", b"application/json"), (b"accept", b"application/json, text/event-stream")]


async def post(body, session=None):
    headers = HEADERS + ([(b"mcp-session-id", session.encode())] if session else [])
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent = []

    async def receive():
        if messages:
            return messages.pop()
        await asyncio.sleep(3600)

    async def send(message):
        sent.append(message)

    await gw.app({"type": "http", "method": "POST", "path": "/mcp", "headers": headers}, receive, send)
    return sent


async def main(count):
    async with gw.writer:
        opened = await post(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "b", "version": "1"}}}).encode())
        session = dict(opened[0]["headers"])[b"mcp-session-id"].decode()
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                           "params": {"name": "time__get_current_time", "arguments": {"timezone": "UTC"}}}).encode()
        for _ in range(500):
            await post(body, session)
        answer = await post(body, session)
        assert b'"isError":false' in answer[-1]["body"], answer
        started = time.process_time()
        for _ in range(count):
            await post(body, session)
        return (time.process_time() - started) / count


print(asyncio.run(main(int(sys.argv[1]))) * 1e6)
'''


def one(code: Path) -> float:
    done = subprocess.run([sys.executable, "-c", HARNESS, str(CALLS)], cwd=code, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(code)}, timeout=600)
    if done.returncode:
        raise SystemExit(f"{code}: {done.stderr[-1500:]}")
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE)
    baseline = parser.parse_args().baseline
    sides = {"before": worktree(baseline), "after": REPO}
    samples: dict[str, list[float]] = {label: [] for label in sides}
    for _ in range(ROUNDS):
        for label, code in sides.items():
            samples[label].append(one(code))
    print(f"gateway request path in-process, {CALLS} tools/call per round, {ROUNDS} rounds, upstream faked, "
          f"audit on; before = {baseline}, after = this checkout")
    for label, values in samples.items():
        print(f"  {label:<7} min {min(values):6.1f} us  median {statistics.median(values):6.1f} us CPU per call "
              f"(rounds: {', '.join(f'{v:.0f}' for v in values)})")
    print(f"  after/before: min {min(samples['after']) / min(samples['before']):.2f}x, "
          f"median {statistics.median(samples['after']) / statistics.median(samples['before']):.2f}x")


if __name__ == "__main__":
    main()
