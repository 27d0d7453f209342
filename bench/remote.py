"""Remote toolboxes on the DigitalOcean simulator (droplets = real sshd on loopback, this
machine's Docker engine behind them).

1. Time from `toolbox add --droplet` to a called tool, by phase (gateway image warm).
2. Tool-call latency through the SSH-forwarded engine socket vs the local socket: the
   same container, the same attach transport, calls interleaved in rounds.
3. Policy propagation: grant/revoke in the vault -> pushed -> the droplet's gateway
   shows the change to an agent (tools/list over TLS).

    python bench/remote.py [--calls 1000] [--flips 20]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keyring  # noqa: E402
from mcp import Client  # noqa: E402

from bench.runtime import timed_calls  # noqa: E402
from console.catalog import load_catalog  # noqa: E402
from console.paths import resolve_paths  # noqa: E402
from console.remote.cloudinit import READY_MARKER  # noqa: E402
from console.remote.deploy import tls_context  # noqa: E402
from console.remote.links import open_tunnel  # noqa: E402
from console.runtime.attach import attached  # noqa: E402
from console.runtime.enginehttp import Endpoint  # noqa: E402
from console.runtime.transport import channel_transport  # noqa: E402
from console.services import agents, grants, servers, toolboxes  # noqa: E402
from console.services import remote_toolboxes as remote  # noqa: E402
from console.services.grants import Target  # noqa: E402
from console.services.tools import approve  # noqa: E402
from console.vault import KeySource  # noqa: E402
from console.workspace import Workspace  # noqa: E402
from tests.remote.conftest import wipe_toolbox  # noqa: E402
from tests.support.do_sim import DigitalOceanSim  # noqa: E402
from tests.support.gateway import agent, tool_names  # noqa: E402
from tests.support.keyrings import MemoryKeyring  # noqa: E402
from tests.support.sshd import Sshd  # noqa: E402

TOKEN = "dop_v1_bench"
logging.getLogger("mcp").setLevel(logging.CRITICAL)  # a client closed mid-stream logs a traceback; noise here


def pct(samples: list[float], q: float) -> float:
    return sorted(samples)[min(len(samples) - 1, int(q * len(samples)))] * 1000


async def latency(local: Endpoint, forwarded: Endpoint, container_id: str, calls: int) -> list[str]:
    rounds = 10
    near: list[float] = []
    far: list[float] = []
    async with attached(local, container_id) as c1, attached(forwarded, container_id) as c2, \
            Client(channel_transport(c1), mode="legacy") as direct, Client(channel_transport(c2), mode="legacy") as tunneled:
        await timed_calls(direct, 50)
        await timed_calls(tunneled, 50)
        for _ in range(rounds):
            near += await timed_calls(direct, calls // rounds)
            far += await timed_calls(tunneled, calls // rounds)
    return [
        f"  {'':<30}{'p50':>9}{'p99':>9}{'calls/s':>10}",
        *[f"  {label:<30}{pct(s, 0.5):7.2f}ms{pct(s, 0.99):7.2f}ms{len(s) / sum(s):10.0f}"
          for label, s in (("local engine socket", near), ("SSH-forwarded socket", far))],
        f"  ratio forwarded/local: p50 {pct(far, 0.5) / pct(near, 0.5):.2f}x, p99 {pct(far, 0.99) / pct(near, 0.99):.2f}x",
    ]


async def visible(url: str, token: str, verify) -> list[str]:  # noqa: ANN001
    async with agent(url, token, verify=verify) as client:
        return await tool_names(client)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--flips", type=int, default=20)
    args = parser.parse_args()
    keyring.set_keyring(MemoryKeyring())
    os.environ.setdefault("TBX_BASE_IMAGE", "tbx-base:test")
    os.environ.setdefault("TBX_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".testenv" / "cache"))
    net = random.randint(20, 250)
    addresses = (f"127.{net}.0.{n}" for n in itertools.count(2))
    hosts: dict[int, Sshd] = {}
    sim: DigitalOceanSim

    def provision(droplet: dict) -> str:
        ip = next(addresses)
        hosts[droplet["id"]] = Sshd(sim.public_keys_of(droplet), host=ip, port=22)
        hosts[droplet["id"]].start()
        Path(READY_MARKER).parent.mkdir(parents=True, exist_ok=True)
        Path(READY_MARKER).touch()
        return ip

    with tempfile.TemporaryDirectory() as home, DigitalOceanSim(token=TOKEN, provision=provision) as sim:
        sim.active_after = 0.5
        os.environ["TBX_HOME"] = home
        os.environ["DIGITALOCEAN_END_POINT"] = sim.endpoint
        ws = Workspace.create(resolve_paths(), KeySource(None))
        toolboxes.add_local(ws, "local")
        remote.set_api_token(ws, TOKEN)
        made: list[str] = []
        try:
            print("== toolbox add --droplet -> a called tool (simulated API, droplet active after 0.5 s)")
            phases: dict[str, list[float]] = {k: [] for k in ("droplet+ssh+gateway", "server add", "grant+push", "first call", "total")}
            for i in range(3):
                t0 = time.perf_counter()
                added = remote.add_droplet(ws, f"far{i}")
                made.append(added.toolbox.id)
                t1 = time.perf_counter()
                servers.add_server(ws, f"far{i}", load_catalog(ws.paths).get("time"))
                approve(ws, f"far{i}", "time")
                t2 = time.perf_counter()
                _agent, token = agents.add_agent(ws, f"a{i}")
                grants.grant(ws, f"a{i}", Target.parse(f"far{i}"))
                grants.grant(ws, f"a{i}", Target.parse(f"far{i}/time"))
                remote.sync(ws, ws.repos.toolboxes.require(f"far{i}"))
                t3 = time.perf_counter()
                verify = tls_context(added.toolbox.gateway_cert)

                async def first_call(url: str = added.gateway_url, token: str = token, verify=verify) -> None:  # noqa: ANN001
                    async with agent(url, token, verify=verify) as client:
                        while "time__get_current_time" not in await tool_names(client):
                            await asyncio.sleep(0.02)
                        assert not (await client.call_tool("time__get_current_time", {"timezone": "UTC"})).is_error

                asyncio.run(first_call())
                t4 = time.perf_counter()
                for key, value in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0), strict=True):
                    phases[key].append(value)
            for key, values in phases.items():
                print(f"  {key:<22} " + "  ".join(f"{v:6.2f}s" for v in values) + f"   median {statistics.median(values):.2f}s")

            print(f"== tool-call latency, {args.calls} calls each, same container (mcp-server-time)")
            box = ws.repos.toolboxes.require("far0")
            ref = servers.resolve(ws, "far0/time")
            with open_tunnel(ws, box) as tunnel:
                from console.runtime.containers import Engine

                engine = Engine(tunnel.endpoint)
                container = engine.find(ref.server.id)
                engine.close()
                lines = asyncio.run(latency(Endpoint.parse(None), Endpoint.parse(tunnel.endpoint), container.id, args.calls))
            print("\n".join(lines))

            print(f"== policy propagation, {args.flips} grant/revoke flips (vault change -> agent sees it on the droplet)")
            verify = tls_context(box.gateway_cert)
            _agent, token = agents.add_agent(ws, "flipper")
            grants.grant(ws, "flipper", Target.parse("far0"))
            remote.sync(ws, ws.repos.toolboxes.require("far0"))
            push, total = [], []
            for n in range(args.flips):
                want = n % 2 == 0
                start = time.perf_counter()
                if want:
                    grants.grant(ws, "flipper", Target.parse("far0/time/get_current_time"))
                else:
                    grants.revoke(ws, "flipper", Target.parse("far0/time/get_current_time"))
                pushed = remote.sync(ws, ws.repos.toolboxes.require("far0"))
                push.append(time.perf_counter() - start)
                while ("time__get_current_time" in asyncio.run(visible(box.gateway_address, token, verify))) != want:
                    time.sleep(0.01)
                total.append(time.perf_counter() - start)
                assert pushed.pushed
            print(f"  change + push (ssh, incl. connect)   p50 {statistics.median(push) * 1000:7.0f} ms  max {max(push) * 1000:7.0f} ms")
            print(f"  change -> seen by the agent          p50 {statistics.median(total) * 1000:7.0f} ms  max {max(total) * 1000:7.0f} ms  (aim < 2000 ms)")
        finally:
            for toolbox_id in made:
                wipe_toolbox(toolbox_id)
            for sshd in hosts.values():
                sshd.close()


if __name__ == "__main__":
    main()
