"""A tool call to a remote MCP server through the gateway, against the same server called
directly with the SDK, side by side in one run (issue 21, part A).

The server is the tests' SDK server (tests/fixtures/servers/remote_http.py) serving
Streamable HTTP on 127.0.0.1. Directly: an SDK ``Client`` over its own HTTP session to
the server. Through the gateway: an agent's SDK ``Client`` to the gateway (Streamable
HTTP, bearer token), which checks the grant and the pin, forwards the call over its one
upstream session with the server (``console/runtime/remote_session.py``), masks the
result and writes the audit record. Calls alternate, so both paths see the same machine.

Run: .venv/bin/python bench/remote_server.py [--calls 200]   (needs the Docker engine:
the gateway watches its toolbox's engine even when it holds only remote servers)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mcp import Client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from console.paths import resolve_paths  # noqa: E402
from console.services import agents, grants, toolboxes  # noqa: E402
from console.services.grants import Target  # noqa: E402
from console.services.remote_servers import add_remote_server  # noqa: E402
from console.services.tools import approve  # noqa: E402
from console.vault import KeySource  # noqa: E402
from console.workspace import Workspace  # noqa: E402
from tests.support.gateway import RunningGateway, agent  # noqa: E402
from tests.support.remote_mcp import RemoteServer  # noqa: E402
from tests.support.sharedkeys import shared_keyring_home  # noqa: E402


async def timed(client: Client, name: str) -> float:
    started = time.perf_counter()
    result = await client.call_tool(name, {"text": "ping"})
    elapsed = time.perf_counter() - started
    if result.is_error:
        raise SystemExit(f"{name} failed: {result.content}")
    return elapsed


async def measure(far: RemoteServer, gateway_url: str, token: str, calls: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"direct": [], "gateway": []}
    async with Client(streamable_http_client(far.url), mode="legacy") as direct, \
            agent(gateway_url, token) as through:
        for _ in range(5):  # warm both paths
            await timed(direct, "echo")
            await timed(through, "far__echo")
        for _ in range(calls):
            times["direct"].append(await timed(direct, "echo"))
            times["gateway"].append(await timed(through, "far__echo"))
    return times


def main(calls: int) -> None:
    with tempfile.TemporaryDirectory(prefix="tbx-bench-remote-") as folder, \
            shared_keyring_home(Path(folder)), RemoteServer(Path(folder) / "far") as far:
        paths = resolve_paths()
        paths.ensure()
        ws = Workspace.create(paths, KeySource(None))
        toolboxes.add_local(ws, "local")
        add_remote_server(ws, "local", far.url, name="far", headers={"X-Api-Key": "bench"})
        approve(ws, "local", "far")
        _agent, token = agents.add_agent(ws, "bench-agent")
        for target in ("local", "local/far"):
            grants.grant(ws, "bench-agent", Target.parse(target))
        gateway = RunningGateway(paths).start()
        try:
            times = asyncio.run(measure(far, gateway.url, token, calls))
        finally:
            gateway.stop()
    p50 = {path: statistics.median(values) * 1000 for path, values in times.items()}
    print(f"tool call to a remote MCP server (Streamable HTTP on 127.0.0.1), p50 of {calls} each, alternated")
    print(f"{'path':<8} {'p50 ms':>8} {'p90 ms':>8} {'min ms':>8} {'max ms':>8}")
    for path, values in times.items():
        ordered = sorted(values)
        print(f"{path:<8} {p50[path]:>8.2f} {ordered[int(len(ordered) * 0.9)] * 1000:>8.2f}"
              f" {ordered[0] * 1000:>8.2f} {ordered[-1] * 1000:>8.2f}")
    print(f"gateway - direct (p50): {p50['gateway'] - p50['direct']:+.2f} ms, "
          f"ratio {p50['gateway'] / p50['direct']:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    main(parser.parse_args().calls)
