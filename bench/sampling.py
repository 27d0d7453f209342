"""A sampling round trip, direct vs through the gateway, side by side in one run (issue 17).

server-everything's ``trigger-sampling-request`` asks its client to sample; an mcp SDK
client whose sampling callback answers at once is that client. Direct, it is connected to
the container's attach stream; through the gateway, it is an agent over Streamable HTTP,
and the request travels server -> gateway (attributed to the one call in flight, checked,
audited) -> the agent's event stream -> the agent's POSTed answer -> gateway (validated)
-> server. A plain ``echo`` call on both paths is the reference: the difference between the
two ratios is what relaying the request costs.

The two paths use two containers of the same image (the gateway's toolbox ``local``, and
``direct``, a toolbox no gateway serves), both allowed to ask for sampling, cpus=2. Rounds
alternate between the paths so machine drift hits both alike.

Run: .venv/bin/python bench/sampling.py   (needs the test environment)
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.gateway import PASSPHRASE, pct  # noqa: E402  (it sets the image environment too)

import httpx2  # noqa: E402
import mcp_types as types  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from console.runtime.attach import attached  # noqa: E402
from console.runtime.enginehttp import Endpoint  # noqa: E402
from console.runtime.transport import channel_transport  # noqa: E402

CALLS = int(os.environ.get("BENCH_CALLS", "200"))
ROUNDS = 4
SAMPLE = "trigger-sampling-request"
SETUP = """
import sys
from console.catalog import load_catalog
from console.model import Limits
from console.paths import resolve_paths
from console.services import servers, toolboxes
from console.services.server_asks import set_may_ask
from console.services.tools import approve
from console.vault import KeySource
from console.workspace import Workspace
ws = Workspace.create(resolve_paths(), KeySource(passphrase=sys.argv[1]))
entry = load_catalog(ws.paths).get("everything")
limits = Limits(cpus=2.0, memory_mb=entry.limits.memory_mb, pids=entry.limits.pids)
for box in ("local", "direct"):
    toolboxes.add_local(ws, box)
    servers.add_server(ws, box, entry, limits=limits)
    set_may_ask(ws, f"{box}/everything", "sampling", True)
    approve(ws, box, "everything")
"""
AGENT = """
import json, sys
from console.paths import resolve_paths
from console.services import agents, grants
from console.services.grants import Target
from console.workspace import Workspace
ws = Workspace.open(resolve_paths())
_agent, token = agents.add_agent(ws, "sampler")
grants.grant(ws, "sampler", Target.parse("local"))
grants.grant(ws, "sampler", Target.parse("local/everything"))
print(json.dumps(token))
"""
SERVERS = """
import json
from console.paths import resolve_paths
from console.workspace import Workspace
ws = Workspace.open(resolve_paths())
print(json.dumps({box.name: ws.repos.servers.in_toolbox(box.id)[0].id for box in ws.repos.toolboxes.all()}))
"""


async def at_once(context: object, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text="42"),
                                     model="bench", stop_reason="endTurn")


async def timed(client: Client, name: str, arguments: dict, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        result = await client.call_tool(name, arguments)
        samples.append(time.perf_counter() - started)
        assert not result.is_error, result
    return samples


class Bench:
    servers = ("local/everything", "direct/everything")
    """Removed when done (their containers too)."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="tbx-bench-sampling-"))
        self.env = {**os.environ, "TBX_HOME": str(self.home), "TBX_PASSPHRASE": PASSPHRASE,
                    "PYTHONPATH": str(REPO)}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = self.token = self.direct = ""
        self.samples: dict[str, list[float]] = {}

    def run(self, script: str, *args: str) -> str:
        done = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO, env=self.env, capture_output=True,
                              text=True, timeout=900)
        if done.returncode != 0:
            raise SystemExit(f"setup failed: {done.stderr[-2000:]}")
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""

    def setup(self) -> None:
        import docker

        self.run(SETUP, PASSPHRASE)
        self.token = json.loads(self.run(AGENT))
        direct_server = json.loads(self.run(SERVERS))["direct"]
        self.direct = docker.from_env().containers.list(filters={"label": f"io.tbx.server={direct_server}"})[0].id
        self.start_gateway()

    def start_gateway(self) -> None:
        """``tbx gateway serve`` for toolbox ``local`` in its own process; ``self.url`` its address."""
        self.proc = subprocess.Popen([sys.executable, "-m", "console", "gateway", "serve", "--toolbox", "local",
                                      "--port", "0"], cwd=REPO, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        state = self.home / "state" / "gateway-local.json"
        deadline = time.monotonic() + 60
        while not state.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the gateway did not start: {self.proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
        self.url = json.loads(state.read_text())["url"]

    async def round(self, count: int, record: bool) -> None:
        async with (
            attached(Endpoint.parse(None), self.direct) as channel,
            Client(channel_transport(channel), mode="legacy", sampling_callback=at_once) as direct,
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {self.token}"}, timeout=30) as http,
            Client(streamable_http_client(f"{self.url}/mcp", http_client=http), mode="legacy",
                   sampling_callback=at_once) as gateway,
        ):
            for path, client, prefix in (("direct", direct, ""), ("gateway", gateway, "everything__")):
                for kind, name, arguments in (("sampling", SAMPLE, {"prompt": "p", "maxTokens": 5}),
                                              ("echo", "echo", {"message": "m"})):
                    samples = await timed(client, prefix + name, arguments, count)
                    if record:
                        self.samples.setdefault(f"{kind} {path}", []).extend(samples)

    def report(self) -> None:
        print(f"\n{CALLS * ROUNDS} calls per row, {ROUNDS} alternating rounds; ms")
        print(f"{'':22}{'p50':>9}{'p99':>9}")
        for row, samples in self.samples.items():
            print(f"{row:22}{pct(samples, 0.5):9.2f}{pct(samples, 0.99):9.2f}")
        for kind in ("sampling", "echo"):
            ratio = pct(self.samples[f"{kind} gateway"], 0.5) / pct(self.samples[f"{kind} direct"], 0.5)
            print(f"{kind} through the gateway / direct, p50: {ratio:.2f}x")
        extra = (pct(self.samples["sampling gateway"], 0.5) - pct(self.samples["sampling direct"], 0.5)) - (
            pct(self.samples["echo gateway"], 0.5) - pct(self.samples["echo direct"], 0.5))
        print(f"relaying the sampling request and its answer adds {extra:.2f} ms p50 over a plain call's overhead")

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(15)
        for server in self.servers:
            subprocess.run([sys.executable, "-m", "console", "server", "remove", server, "--yes"], cwd=REPO,
                           env=self.env, capture_output=True, timeout=120)
        shutil.rmtree(self.home, ignore_errors=True)


def measure(bench: Bench, calls: int, rounds: int = ROUNDS, warm: int = 20) -> None:
    """Set up, warm every path, time ``rounds`` alternating rounds, report, clean up."""
    try:
        bench.setup()
        asyncio.run(bench.round(warm, record=False))
        for _ in range(rounds):
            asyncio.run(bench.round(calls, record=True))
        bench.report()
    finally:
        bench.close()


def main() -> None:
    measure(Bench(), CALLS)


if __name__ == "__main__":
    main()
