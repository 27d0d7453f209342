"""Calls that wait for the owner (issue 18): how soon a watcher sees a held call, and how
soon the agent has its result once the owner decides.

The agent is an mcp SDK client calling server-everything's ``echo`` under an ask grant,
through a gateway run as ``tbx gateway serve`` in its own process; the watcher is what
``tbx approvals watch`` and the console do: a long poll of ``/approvals`` with a control
token, then a decision bound to the call's hash. Measured, one call at a time:

- request -> visible: from the agent sending the call to the watcher's long poll returning it;
- decision -> result: from the watcher sending "allow" to the agent holding the result.

Run: .venv/bin/python bench/approvals.py   (needs the test environment; BENCH_CALLS=50)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.gateway import PASSPHRASE, pct  # noqa: E402  (it sets the image environment too)
from bench.sampling import Bench  # noqa: E402

import httpx2  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

CALLS = int(os.environ.get("BENCH_CALLS", "50"))
SETUP = """
import sys
from console.catalog import load_catalog
from console.paths import resolve_paths
from console.services import servers, toolboxes
from console.services.tools import approve
from console.vault import KeySource
from console.workspace import Workspace
ws = Workspace.create(resolve_paths(), KeySource(passphrase=sys.argv[1]))
toolboxes.add_local(ws, "local")
servers.add_server(ws, "local", load_catalog(ws.paths).get("everything"))
approve(ws, "local", "everything")
"""
AGENT = """
import json
from console.paths import resolve_paths
from console.services import agents, grants
from console.services.grants import Target
from console.workspace import Workspace
ws = Workspace.open(resolve_paths())
_agent, token = agents.add_agent(ws, "asker")
grants.grant(ws, "asker", Target.parse("local"))
grants.grant(ws, "asker", Target.parse("local/everything/echo"), ask=True)
print(json.dumps(token))
"""
CONTROL = """
import json
from console.gateway.approvals_http import mint_control_token
from console.gateway.auth import owner_key
from console.paths import resolve_paths
from console.workspace import Workspace
print(json.dumps(mint_control_token(owner_key(Workspace.open(resolve_paths())), "bench", ttl=3600)))
"""


class ApprovalsBench(Bench):
    def setup(self) -> None:
        self.run(SETUP, PASSPHRASE)
        self.token = json.loads(self.run(AGENT))
        self.control = json.loads(self.run(CONTROL))
        self.start_gateway()

    async def rounds(self, count: int, record: bool) -> None:
        owner = {"Authorization": f"Bearer {self.control}"}
        async with (
            httpx2.AsyncClient(base_url=self.url, headers=owner, timeout=60) as watcher,
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {self.token}"}, timeout=60) as http,
            Client(streamable_http_client(f"{self.url}/mcp", http_client=http), mode="legacy") as agent,
        ):
            version = (await watcher.get("/approvals")).json()["version"]
            for i in range(count):
                sent = time.perf_counter()
                call = asyncio.ensure_future(agent.call_tool("everything__echo", {"message": f"m{i}"}))
                while True:  # the watcher's long poll, as tbx approvals watch does it
                    seen = (await watcher.get("/approvals", params={"since": version, "wait": 25})).json()
                    version = seen["version"]
                    if seen["pending"]:
                        break
                visible = time.perf_counter()
                (pending,) = seen["pending"]
                decided = time.perf_counter()
                answer = await watcher.post(f"/approvals/{pending['id']}",
                                            json={"decision": "allow", "sha256": pending["sha256"]})
                assert answer.status_code == 200, answer.text
                result = await call
                done = time.perf_counter()
                assert result.content[0].text.endswith(f"m{i}")  # type: ignore[union-attr]
                if record:
                    self.samples.setdefault("request -> visible to the watcher", []).append(visible - sent)
                    self.samples.setdefault("decision -> result at the agent", []).append(done - decided)
                version = (await watcher.get("/approvals")).json()["version"]

    def report(self) -> None:
        print(f"\n{CALLS} held calls, one at a time; ms")
        print(f"{'':38}{'p50':>9}{'p95':>9}")
        for row, samples in self.samples.items():
            print(f"{row:38}{pct(samples, 0.5):9.2f}{pct(samples, 0.95):9.2f}")


def main() -> None:
    bench = ApprovalsBench()
    try:
        bench.setup()
        asyncio.run(bench.rounds(5, record=False))  # warm the path
        asyncio.run(bench.rounds(CALLS, record=True))
        bench.report()
    finally:
        bench.close()


if __name__ == "__main__":
    main()
