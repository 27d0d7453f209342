"""Egress through the allow-list proxy (issue 20, part 1): what it costs a server.

1. Container start to MCP initialized, p50 of ROUNDS (default 10), mcp-server-time from
   the catalog: without egress (its command as Cmd) vs with (the egress wrapper starts
   the forwarder, which listens, forks, and only then execs the server; the proxy
   folder mounted, the proxy variables set). Rounds alternate; creation is untimed.
2. A 1 MB HTTPS download from an origin on 127.0.0.9, p50 of 20, a new connection each:
   direct on the host (no proxy); direct from a container of the same image, user and
   CPU/memory limits on the host's network (the server's CPU share alone); and from
   inside the server's container (network none) through its forwarder and the
   allow-list proxy the gateway runs (the gateway's own EgressHost here). All by the same
   urllib code on the same Python version, timed by itself: ``docker exec`` is outside.

The forwarder runs in the server's own CPU share: with the catalog's half a CPU, the
kernel's CPU quota pauses the container now and then mid-download (about 70 ms); run with
BENCH_CPUS=2 to see the path without that.

Needs the test environment (make test brings it up).
Run: .venv/bin/python bench/egress.py [ROUNDS]   (BENCH_CPUS=2: the server's CPU limit)
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TBX_BASE_IMAGE", "tbx-base:test")

import keyring  # noqa: E402

from console.catalog import load_catalog  # noqa: E402
from console.gateway.egress_host import EgressHost  # noqa: E402
from console.model import ServerInstance  # noqa: E402
from console.runtime.containers import ContainerSpec, Engine  # noqa: E402
from console.runtime.enginehttp import Endpoint  # noqa: E402
from console.runtime.session import mcp_session  # noqa: E402
from console.services import servers  # noqa: E402
from console.workspace import Workspace  # noqa: E402
from bench.secret_handover import workspace  # noqa: E402
from tests.support.egress_net import Origin, tls_for  # noqa: E402
from tests.support.keyrings import MemoryKeyring  # noqa: E402

ORIGIN = "127.0.0.9"
DOWNLOADS = 20
DOWNLOAD = """
import json, os, ssl, sys, time, urllib.request
url, rounds = sys.argv[1], int(sys.argv[2])
context = ssl.create_default_context(cadata=os.environ["ORIGIN_CERT"])
times = []
for _ in range(rounds):
    started = time.perf_counter()
    with urllib.request.urlopen(url, context=context, timeout=30) as response:
        assert len(response.read()) == 1 << 20
    times.append(time.perf_counter() - started)
print(json.dumps(times))
"""


def time_server(ws: Workspace, engine: Engine, hosts: list[str]) -> servers.ServerRef:
    entry = load_catalog(ws.paths).get("time")
    if cpus := os.environ.get("BENCH_CPUS"):  # the catalog's share (0.5) by default
        entry = entry.model_copy(update={"limits": entry.limits.model_copy(update={"cpus": float(cpus)})})
    box = ws.repos.toolboxes.require("local")
    with ws.change() as change:
        server = ServerInstance(toolbox=box.id, name="time", catalog_id=entry.id, spec=entry.model_dump(mode="json"),
                                network="egress", egress=hosts, limits=entry.limits)
        server.image = servers.ensure_image(ws, engine, entry, lambda line: None)
        change.repos.servers.put(server)
    return servers.ServerRef(box, server)


async def start_to_initialized(engine: Engine, container_id: str) -> float:
    async def start() -> None:
        await asyncio.to_thread(engine.start, container_id)

    started = time.perf_counter()
    async with mcp_session(Endpoint.parse(engine.endpoint), container_id, before_initialize=start):
        return time.perf_counter() - started


def one_start(ws: Workspace, engine: Engine, ref: servers.ServerRef, egress: bool, n: int) -> float:
    server = ref.server.model_copy(update={"network": "egress" if egress else "none"})
    spec = servers.container_spec(ws, servers.ServerRef(ref.toolbox, server), engine)
    spec.name = f"tbx-bench-egress-{'p' if egress else 'n'}-{n}-{os.getpid()}"
    spec.labels = {"io.tbx.bench": "egress"}
    container = engine.create(spec)
    try:
        return asyncio.run(start_to_initialized(engine, container.id))
    finally:
        engine.remove(container.id)


class Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def run(self, coroutine: object) -> object:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)  # type: ignore[arg-type]


def direct_container(engine: Engine, spec: ContainerSpec) -> Any:
    """The same image, user and limits on the host's network, no proxy: what the server's
    own CPU share costs a download, without the egress path."""
    spec = replace(spec, name=f"{spec.name}-direct", network="host", egress_dir=None,
                   command=["python3", "-c", "import time; time.sleep(3600)"],
                   env={k: v for k, v in spec.env.items() if "proxy" not in k.lower()})
    container = engine.create(spec)
    engine.start(container.id)
    return engine.client.containers.get(container.id)


def downloads(ws: Workspace, engine: Engine, ref: servers.ServerRef,
              folder: Path) -> tuple[list[float], list[float], list[float]]:
    loop = Loop()
    server_tls, _client = tls_for(folder, ORIGIN)
    origin = loop.run(Origin(ORIGIN, server_tls).start())
    cafile = folder / f"{ORIGIN}.crt"
    host = EgressHost(ws.paths, lambda event: None)
    loop.run(host.apply({ref.server.id: ("local/time", [f"{ORIGIN}:{origin.port}"])}))  # type: ignore[attr-defined]
    spec = servers.container_spec(ws, ref, engine)
    spec.name = f"tbx-bench-egress-download-{os.getpid()}"
    spec.labels = {"io.tbx.bench": "egress"}
    container = engine.create(spec)
    try:
        engine.start(container.id)
        found = engine.client.containers.get(container.id)
        url, cert = f"{origin.url}/bytes/{1 << 20}", cafile.read_text()  # type: ignore[attr-defined]
        code, out = found.exec_run(["python3", "-c", DOWNLOAD, url, str(DOWNLOADS)], environment={"ORIGIN_CERT": cert})
        if code != 0:
            raise SystemExit(f"the download inside the container failed: {out.decode()[-500:]}")
        proxied = json.loads(out.decode().strip().splitlines()[-1])
        same = direct_container(engine, spec)
        try:
            code, out = same.exec_run(["python3", "-c", DOWNLOAD, url, str(DOWNLOADS)],
                                      environment={"ORIGIN_CERT": cert})
            limited = json.loads(out.decode().strip().splitlines()[-1])
        finally:
            engine.remove(same.id)
        clean_env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()} | {"ORIGIN_CERT": cert}
        direct = json.loads(subprocess.run([sys.executable, "-c", DOWNLOAD, url, str(DOWNLOADS)],
                                           env=clean_env, capture_output=True, text=True, check=True).stdout)
        return direct, limited, proxied
    finally:
        engine.remove(container.id)
        loop.run(host.close())
        loop.run(origin.close())  # type: ignore[attr-defined]


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    keyring.set_keyring(MemoryKeyring())
    ws = workspace()
    engine = Engine()
    folder = Path(tempfile.mkdtemp(prefix="tbx-bench-egress-"))
    try:
        ref = time_server(ws, engine, [])
        one_start(ws, engine, ref, True, -1)  # warm-up: page cache, image layers
        one_start(ws, engine, ref, False, -1)
        times: dict[bool, list[float]] = {True: [], False: []}
        for n in range(rounds):
            for egress in (n % 2 == 0, n % 2 == 1):
                times[egress].append(one_start(ws, engine, ref, egress, n))
        direct, limited, proxied = downloads(ws, engine, ref, folder)
    finally:
        engine.close()
    plain, with_proxy = statistics.median(times[False]) * 1000, statistics.median(times[True]) * 1000
    print(f"container start to MCP initialized, mcp-server-time, p50 of {rounds}:")
    print(f"  {'without egress':40} {plain:8.1f} ms")
    print(f"  {'with egress (forwarder + proxy folder)':40} {with_proxy:8.1f} ms   "
          f"({with_proxy - plain:+.1f} ms, {with_proxy / plain:.2f}x)")
    d, limit, p = (statistics.median(t) * 1000 for t in (direct, limited, proxied))
    print(f"1 MB HTTPS download from {ORIGIN}, a new connection each, p50 of {DOWNLOADS}:")
    print(f"  {'direct on the host':52} {d:8.1f} ms")
    print(f"  {'direct, same image and limits, host network':52} {limit:8.1f} ms")
    print(f"  {'from the server container, through the proxy':52} {p:8.1f} ms   "
          f"({p / d:.2f}x the host, {p / limit:.2f}x the same container direct)")


if __name__ == "__main__":
    main()
