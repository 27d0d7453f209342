"""Live streams from the engine the console consumes: stderr logs, stats, events.

All are async iterators over the Engine API (see enginehttp), so they work the same on
a local or a forwarded remote socket, and the TUI can watch many servers at once
without a thread each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from console.runtime.containers import LABEL_MANAGED
from console.runtime.enginehttp import STDERR, Endpoint, container_path, demux, expect_ok, json_lines, request


async def stderr_lines(endpoint: Endpoint, container: str, *, follow: bool, tail: int | None = 100) -> AsyncIterator[str]:
    """The server's stderr (its log), history then live. stdout is the MCP stream and
    carries tool results, so it is never shown as a log."""
    query: dict[str, str | int] = {"stdout": 0, "stderr": 1, "follow": int(follow), "timestamps": 0}
    query["tail"] = "all" if tail is None else tail
    response = await expect_ok(
        await request(endpoint, "GET", container_path(container, "logs"), query), "reading the server's log"
    )
    buffer = b""
    try:
        async for stream, payload in demux(response.body_chunks()):
            if stream != STDERR:
                continue
            buffer += payload
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                yield line.decode("utf-8", "replace").rstrip("\r")
        if buffer:
            yield buffer.decode("utf-8", "replace")
    finally:
        response.close()


@dataclass(frozen=True)
class Stats:
    cpu_percent: float
    """Share of one CPU (100 = one full core), as ``docker stats`` shows it."""
    memory_bytes: int
    memory_limit: int
    pids: int

    @property
    def memory_percent(self) -> float:
        return 100.0 * self.memory_bytes / self.memory_limit if self.memory_limit else 0.0


def parse_stats(sample: dict) -> Stats:
    cpu, pre = sample.get("cpu_stats", {}), sample.get("precpu_stats", {})
    cpu_delta = cpu.get("cpu_usage", {}).get("total_usage", 0) - pre.get("cpu_usage", {}).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cpus = cpu.get("online_cpus") or len(cpu.get("cpu_usage", {}).get("percpu_usage") or []) or 1
    percent = (cpu_delta / system_delta) * cpus * 100.0 if system_delta > 0 and cpu_delta > 0 else 0.0
    memory = sample.get("memory_stats", {})
    mem_stats = memory.get("stats", {})
    # Page cache is reclaimable; subtract it as docker stats does (cgroup v1 and v2 names).
    cache = mem_stats.get("total_inactive_file", mem_stats.get("inactive_file", 0))
    used = max(0, int(memory.get("usage", 0)) - int(cache))
    return Stats(percent, used, int(memory.get("limit", 0)), int(sample.get("pids_stats", {}).get("current", 0)))


async def stats(endpoint: Endpoint, container: str) -> AsyncIterator[Stats]:
    """One sample a second while the container runs; ends when it stops."""
    response = await expect_ok(
        await request(endpoint, "GET", container_path(container, "stats"), {"stream": 1}), "reading stats"
    )
    try:
        async for sample in json_lines(response):
            if sample.get("read", "").startswith("0001"):
                return  # the engine's way of saying the container stopped
            yield parse_stats(sample)
    finally:
        response.close()


async def events(endpoint: Endpoint, toolbox_id: str | None = None) -> AsyncIterator[dict]:
    """Container events (start, die, restart, oom, destroy...) for our containers, live."""
    import json

    labels = [f"{LABEL_MANAGED}=true"] + ([f"io.tbx.toolbox={toolbox_id}"] if toolbox_id else [])
    filters = json.dumps({"type": ["container"], "label": labels})
    response = await expect_ok(await request(endpoint, "GET", "/events", {"filters": filters}), "watching events")
    try:
        async for event in json_lines(response):
            yield event
    finally:
        response.close()
