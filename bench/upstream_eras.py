"""A server that speaks only MCP 2026-07-28 behind the gateway, against the same server
speaking the handshake era, side by side in one run (issue 17, part 3).

The conformance suite's reference server (built with the mcp SDK) runs three times from
one image: ``ref`` (both eras: the gateway keeps the handshake era with it), ``ref26``
(``serve.py stdio-2026``: that era only, every forwarded request carries the envelope)
and, in toolbox ``direct`` that no gateway serves, ``ref26`` again for the SDK client
connected straight to its attach stream. Rows:

- a plain call (``test_simple_text``);
- a sampling round trip: on ``ref`` the server's sampling request relayed on the agent's
  session stream (``test_sampling``); on ``ref26`` its input-required result, asked of
  the agent by the gateway and the call sent again (``test_input_required_result_sampling``),
  for an agent of the handshake era (asked on its stream) and one of the new era (asked
  by the gateway's own input-required result, and called again by the agent).

Rounds alternate between the rows so machine drift hits them alike.

Run: .venv/bin/python bench/upstream_eras.py   (needs the test environment)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.gateway import pct  # noqa: E402
from bench.sampling import Bench, at_once, measure, timed  # noqa: E402

import httpx2  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from console.runtime.attach import attached  # noqa: E402
from console.runtime.enginehttp import Endpoint  # noqa: E402
from console.runtime.transport import channel_transport  # noqa: E402

CALLS = int(os.environ.get("BENCH_CALLS", "150"))
ROUNDS = 4
SETUP = """
import sys
from console.model import Limits, Mount
from console.paths import resolve_paths
from console.services import servers, toolboxes
from console.services.server_asks import set_may_ask
from console.services.tools import approve
from console.vault import KeySource
from console.workspace import Workspace
from tests.support.conformance_targets import Target
ws = Workspace.create(resolve_paths(), KeySource(passphrase=sys.argv[1]))
for box, name, stdio in (("local", "ref", "stdio"), ("local", "ref26", "stdio-2026"), ("direct", "ref26", "stdio-2026")):
    if box not in {t.name for t in ws.repos.toolboxes.all()}:
        toolboxes.add_local(ws, box)
    target = Target("conformance", stdio=stdio)
    entry = target.entry(ws.paths)
    limits = Limits(cpus=2.0, memory_mb=entry.limits.memory_mb, pids=entry.limits.pids)
    servers.add_server(ws, box, entry, name=name, limits=limits, mounts=target.mounts())
    set_may_ask(ws, f"{box}/{name}", "sampling", True)
    approve(ws, box, name)
"""
AGENT = """
import json
from console.paths import resolve_paths
from console.services import agents, grants
from console.services.grants import Target
from console.workspace import Workspace
ws = Workspace.open(resolve_paths())
_agent, token = agents.add_agent(ws, "eras")
for target in ("local", "local/ref", "local/ref26"):
    grants.grant(ws, "eras", Target.parse(target))
print(json.dumps(token))
"""
DIRECT = """
import json
from console.paths import resolve_paths
from console.workspace import Workspace
ws = Workspace.open(resolve_paths())
print(json.dumps(ws.repos.servers.in_toolbox(ws.repos.toolboxes.require("direct").id)[0].id))
"""
PLAIN = ("test_simple_text", {})
SAMPLED = {"ref": ("test_sampling", {"prompt": "p"}), "ref26": ("test_input_required_result_sampling", {})}


class Eras(Bench):
    servers = ("local/ref", "local/ref26", "direct/ref26")

    def setup(self) -> None:
        import docker

        self.run(SETUP, os.environ.get("TBX_PASSPHRASE", self.env["TBX_PASSPHRASE"]))
        self.token = json.loads(self.run(AGENT))
        server = json.loads(self.run(DIRECT))
        self.direct = docker.from_env().containers.list(filters={"label": f"io.tbx.server={server}"})[0].id
        self.start_gateway()

    async def round(self, count: int, record: bool) -> None:
        async with (
            attached(Endpoint.parse(None), self.direct) as channel,
            Client(channel_transport(channel), mode="auto", sampling_callback=at_once) as direct,
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {self.token}"}, timeout=30) as http,
            Client(streamable_http_client(f"{self.url}/servers/ref/mcp", http_client=http), mode="legacy",
                   sampling_callback=at_once) as ref,
            Client(streamable_http_client(f"{self.url}/servers/ref26/mcp", http_client=http), mode="legacy",
                   sampling_callback=at_once) as ref26,
            Client(streamable_http_client(f"{self.url}/servers/ref26/mcp", http_client=http), mode="2026-07-28",
                   sampling_callback=at_once) as ref26_new,
        ):
            rows = (("ref26, direct (new-era client)", direct, "ref26"),
                    ("ref, gateway (handshake-era agent)", ref, "ref"),
                    ("ref26, gateway (handshake-era agent)", ref26, "ref26"),
                    ("ref26, gateway (new-era agent)", ref26_new, "ref26"))
            for label, client, server in rows:
                for kind, (name, arguments) in (("plain call", PLAIN), ("sampling", SAMPLED[server])):
                    samples = await timed(client, name, arguments, count)
                    if record:
                        self.samples.setdefault(f"{kind:11}{label}", []).extend(samples)

    def report(self) -> None:
        print(f"\n{CALLS * ROUNDS} calls per row, {ROUNDS} alternating rounds; ms")
        print(f"{'':48}{'p50':>9}{'p99':>9}")
        for row, samples in self.samples.items():
            print(f"{row:48}{pct(samples, 0.5):9.2f}{pct(samples, 0.99):9.2f}")
        for kind in ("plain call", "sampling"):
            old = pct(self.samples[f"{kind:11}ref, gateway (handshake-era agent)"], 0.5)
            new = pct(self.samples[f"{kind:11}ref26, gateway (handshake-era agent)"], 0.5)
            direct = pct(self.samples[f"{kind:11}ref26, direct (new-era client)"], 0.5)
            print(f"{kind}: new-era server / handshake-era server through the gateway, p50: {new / old:.2f}x; "
                  f"new-era server through the gateway / direct: {new / direct:.2f}x")


def main() -> None:
    measure(Eras(), CALLS, ROUNDS, warm=10)


if __name__ == "__main__":
    main()
