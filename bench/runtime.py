"""Runtime benchmark: add-to-healthy, parallel starts, and tool-call latency over attach.

1. One server from `add` to healthy (discovered, answering), cold (no image, empty
   download cache) and warm, for a PyPI server (time) and an npm server (memory).
2. Ten servers started at once vs the slowest of them started alone (aim: within 1.5x).
3. Tool-call latency p50/p99 over 2,000 calls to mcp-server-time through the attach
   transport, side by side with the same calls through `docker run -i` driven by the
   SDK's stdio client (aim: ours no slower). Rounds alternate so drift hits both alike.

Needs the test environment (make test brings it up).
Run: .venv/bin/python bench/runtime.py [add] [parallel] [latency]   (default: all three)
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TBX_BASE_IMAGE", "tbx-base:test")

import docker  # noqa: E402
import keyring  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

from console.catalog import load_catalog  # noqa: E402
from console.model import Limits, Mount  # noqa: E402
from console.paths import resolve_paths  # noqa: E402
from console.runtime.attach import attached  # noqa: E402
from console.runtime.enginehttp import Endpoint  # noqa: E402
from console.runtime.transport import channel_transport  # noqa: E402
from console.services import servers, toolboxes  # noqa: E402
from console.vault import KeySource  # noqa: E402
from console.workspace import Workspace  # noqa: E402
from tests.support.keyrings import MemoryKeyring  # noqa: E402

CALLS = int(os.environ.get("BENCH_CALLS", "2000"))
ROUNDS = 4


def workspace(cache_dir: Path) -> Workspace:
    home = Path(tempfile.mkdtemp(prefix="tbx-bench-"))
    os.environ["TBX_HOME"] = str(home)
    os.environ["TBX_CACHE_DIR"] = str(cache_dir)
    ws = Workspace.create(resolve_paths(), KeySource(None))
    toolboxes.add_local(ws, "local")
    return ws


def data_dir(root: Path, name: str) -> Mount:
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    if os.getuid() == 0:
        os.chown(path, 10001, 10001)
    return Mount(source=str(path), target="/data")


def add_to_healthy(ws: Workspace, catalog_id: str, name: str, mounts: list[Mount]) -> float:
    entry = load_catalog(ws.paths).get(catalog_id)
    started = time.perf_counter()
    servers.add_server(ws, "local", entry, name=name, mounts=mounts)
    return time.perf_counter() - started


def remove_images(tag_prefix: str) -> None:
    client = docker.from_env()
    for image in client.images.list(name=tag_prefix):
        client.images.remove(image.id, force=True)


def bench_add(root: Path) -> list[str]:
    lines = []
    for catalog_id, mounts in (("time", []), ("memory", [data_dir(root, "memory")])):
        remove_images(f"tbx/{catalog_id}")
        cold_ws = workspace(Path(tempfile.mkdtemp(prefix="tbx-cold-cache-")))
        cold = add_to_healthy(cold_ws, catalog_id, catalog_id, mounts)
        servers.remove_server(cold_ws, f"local/{catalog_id}")
        warm = []
        for i in range(3):
            warm.append(add_to_healthy(cold_ws, catalog_id, f"{catalog_id}-{i}", mounts))
        for i in range(3):
            servers.remove_server(cold_ws, f"local/{catalog_id}-{i}")
        lines.append(f"  {catalog_id:<8} cold {cold:6.2f} s   warm {statistics.median(warm):6.2f} s "
                     f"(min {min(warm):.2f}, max {max(warm):.2f})")
    return lines


def bench_parallel_start(ws: Workspace, root: Path) -> list[str]:
    kinds = ["time", "memory", "everything", "time", "memory", "everything", "time", "memory", "filesystem", "time"]
    names = []
    for i, kind in enumerate(kinds):
        mounts = [data_dir(root, f"p{i}")] if kind in ("memory", "filesystem") else []
        names.append(f"p{i}-{kind}")
        add_to_healthy(ws, kind, names[-1], mounts)
    for name in names:
        servers.stop_server(ws, f"local/{name}")
    alone = {}
    for name in names:
        started = time.perf_counter()
        servers.start_server(ws, f"local/{name}")
        alone[name] = time.perf_counter() - started
        servers.stop_server(ws, f"local/{name}")
    slowest = max(alone, key=lambda n: alone[n])
    together, busy, ours = [], [], []
    for _ in range(2):
        cpu_before, own_before = machine_cpu(), time.process_time()
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            list(pool.map(lambda n: servers.start_server(ws, f"local/{n}"), names))
        wall = time.perf_counter() - started
        together.append(wall)
        used, total = (after - before for after, before in zip(machine_cpu(), cpu_before, strict=True))
        busy.append(used / total)
        ours.append(time.process_time() - own_before)
        for name in names:
            servers.stop_server(ws, f"local/{name}")
    ratio = statistics.median(together) / alone[slowest]
    for name in names:
        servers.remove_server(ws, f"local/{name}")
    return [
        f"  slowest alone ({slowest}) {alone[slowest]:.2f} s; median alone "
        f"{statistics.median(alone.values()):.2f} s",
        f"  ten at once {statistics.median(together):.2f} s (runs: {', '.join(f'{t:.2f}' for t in together)})",
        f"  ratio ten-at-once / slowest-alone: {ratio:.2f}x  (aim <= 1.5x)",
        f"  while ten start: machine CPU {statistics.median(busy):.0%} busy on {os.cpu_count()} cores; "
        f"tbx's own CPU {statistics.median(ours):.2f} s of it",
    ]


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all cores, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


async def timed_calls(client: Client, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        result = await client.call_tool("get_current_time", {"timezone": "UTC"})
        samples.append(time.perf_counter() - started)
        assert not result.is_error
    return samples


async def bench_latency(ws: Workspace, cpus: float | None) -> list[str]:
    """Both sides run the same image with the same hardening and limits; only the way
    the client reaches the server's stdio differs."""
    entry = load_catalog(ws.paths).get("time")
    limits = entry.limits if cpus is None else Limits(cpus=cpus, memory_mb=entry.limits.memory_mb, pids=entry.limits.pids)
    await asyncio.to_thread(servers.add_server, ws, "local", entry, name="lat", limits=limits)
    ref = servers.resolve(ws, "local/lat")
    container = docker.from_env().containers.list(filters={"label": f"io.tbx.server={ref.server.id}"})[0]
    image = ref.server.image
    assert image is not None
    ours: list[float] = []
    theirs: list[float] = []
    per_round = CALLS // ROUNDS
    params = StdioServerParameters(
        command="docker",
        args=["run", "-i", "--rm", "--init", "--network", "none", "--read-only", "--tmpfs", "/tmp:size=64m",
              "--user", "10001:10001", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
              "--cpus", str(limits.cpus), "--memory", f"{limits.memory_mb}m", "--pids-limit", str(limits.pids),
              "-e", "HOME=/tmp", image, *entry.command],
    )
    async with attached(Endpoint.parse(None), container.id) as channel, \
            Client(channel_transport(channel), mode="legacy") as attach_client, \
            Client(stdio_client(params), mode="legacy") as stdio_client_:
        await timed_calls(attach_client, 50)  # warm both up
        await timed_calls(stdio_client_, 50)
        for _ in range(ROUNDS):
            ours += await timed_calls(attach_client, per_round)
            theirs += await timed_calls(stdio_client_, per_round)
    await asyncio.to_thread(servers.remove_server, ws, "local/lat")

    def pct(samples: list[float], q: float) -> float:
        return sorted(samples)[min(len(samples) - 1, int(q * len(samples)))] * 1000

    lines = [f"  CPU limit {limits.cpus:g} on both sides", f"  {'':<34}{'p50':>9}{'p99':>9}{'calls/s':>10}"]
    for label, samples in (("attach transport (ours)", ours), ("docker run -i + SDK stdio client", theirs)):
        lines.append(f"  {label:<34}{pct(samples, 0.5):7.2f}ms{pct(samples, 0.99):7.2f}ms"
                     f"{len(samples) / sum(samples):10.0f}")
    lines.append(f"  ratio ours/theirs: p50 {pct(ours, 0.5) / pct(theirs, 0.5):.2f}x, "
                 f"p99 {pct(ours, 0.99) / pct(theirs, 0.99):.2f}x  (aim <= 1.0x)")
    return lines


def settle(seconds: float = 3.0) -> None:
    """Let the engine finish tearing down the previous section's containers."""
    time.sleep(seconds)


def main() -> None:
    sections = set(sys.argv[1:]) or {"add", "parallel", "latency"}
    keyring.set_keyring(MemoryKeyring())
    root = Path(tempfile.mkdtemp(prefix="tbx-bench-data-"))
    print(f"runtime benchmark ({os.cpu_count()} cores, engine {docker.from_env().version()['Version']})")
    if "add" in sections:
        print("1. add -> healthy (build/pull, create, start, initialize, discover, record)")
        for line in bench_add(root):
            print(line)
        settle()
    shared = workspace(Path(os.environ.get("TBX_BENCH_CACHE", Path(__file__).resolve().parents[1] / ".testenv/cache")))
    if "parallel" in sections:
        print("2. ten servers started at once")
        for line in bench_parallel_start(shared, root):
            print(line)
        settle()
    if "latency" in sections:
        print(f"3. tool-call latency, mcp-server-time, {CALLS} calls each")
        for cpus in (None, 2.0):
            for line in asyncio.run(bench_latency(shared, cpus)):
                print(line)


if __name__ == "__main__":
    main()
