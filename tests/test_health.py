"""Health of running servers: crashes and hangs reported within 5 s, revival, stats, logs."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import docker
import pytest

from console.runtime import streams
from console.runtime.enginehttp import Endpoint
from console.runtime.supervisor import Health, Supervisor, WatchedServer
from console.services import server_status, servers, toolboxes
from console.workspace import Workspace
from tests.test_servers import add

pytestmark = pytest.mark.docker


@pytest.fixture
def time_server(workspace: Workspace, docker_engine) -> Iterator[tuple[Workspace, str, str]]:  # noqa: ANN001
    toolbox = toolboxes.add_local(workspace, "local")
    add(workspace, "time")
    ref = servers.resolve(workspace, "local/time")
    yield workspace, ref.server.id, ref.label
    for container in docker.from_env().containers.list(all=True, filters={"label": f"io.tbx.toolbox={toolbox.id}"}):
        container.remove(force=True)


def server_process(server_id: str) -> int:
    """Host pid of the MCP server: the child of the container's init process."""
    [container] = docker.from_env().containers.list(filters={"label": f"io.tbx.server={server_id}"})
    init = container.attrs["State"]["Pid"]
    return int(open(f"/proc/{init}/task/{init}/children").read().split()[0])


def _in_order(seen: list[str], expected: list[str]) -> bool:
    """Whether ``expected`` appears in ``seen`` as a subsequence."""
    remaining = iter(seen)
    return all(any(item == want for item in remaining) for want in expected)


async def wait_for(supervisor: Supervisor, server_id: str, health: str, within: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if supervisor.health(server_id).health == health:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"not {health} within {within}s: {supervisor.health(server_id)}")


async def test_crash_is_reported_and_the_restart_policy_revives_it(time_server) -> None:  # noqa: ANN001
    ws, server_id, label = time_server
    changes: list[Health] = []
    async with Supervisor(Endpoint.parse(None), [WatchedServer(server_id, label, True)], ping_interval=1.0) as sup:
        sup.on_change(changes.append)
        await wait_for(sup, server_id, "healthy", 30)
        os.kill(server_process(server_id), signal.SIGKILL)
        assert await wait_for(sup, server_id, "down", 5) < 5
        await wait_for(sup, server_id, "healthy", 30)
        assert sup.health(server_id).restarts == 1
        session = await sup.session(server_id)
        result = await session.call_tool("get_current_time", {"timezone": "UTC"})
        assert not result.is_error
    sequence = [h.health for h in changes]
    assert _in_order(sequence, ["healthy", "down", "healthy"]), sequence
    assert not await asyncio.to_thread(
        lambda: server_status.call_tool(ws, "local/time/get_current_time", {"timezone": "UTC"}).result.is_error
    )


async def test_a_hung_server_is_reported_unresponsive_within_5s(time_server) -> None:  # noqa: ANN001
    _ws, server_id, label = time_server
    async with Supervisor(Endpoint.parse(None), [WatchedServer(server_id, label, True)]) as sup:
        await wait_for(sup, server_id, "healthy", 30)
        pid = server_process(server_id)
        os.kill(pid, signal.SIGSTOP)
        try:
            elapsed = await wait_for(sup, server_id, "unresponsive", 5)
            assert elapsed < 5
            assert "no answer to an MCP ping" in (sup.health(server_id).last_error or "")
        finally:
            os.kill(pid, signal.SIGCONT)
        await wait_for(sup, server_id, "healthy", 10)


async def test_a_stopped_server_is_reported_stopped_and_watched_back_up(time_server) -> None:  # noqa: ANN001
    ws, server_id, label = time_server
    async with Supervisor(Endpoint.parse(None), [WatchedServer(server_id, label, True)], ping_interval=1.0) as sup:
        await wait_for(sup, server_id, "healthy", 30)
        await asyncio.to_thread(servers.stop_server, ws, "local/time")
        await wait_for(sup, server_id, "down", 5)
        assert sup.health(server_id).state == "exited"
        await asyncio.to_thread(servers.start_server, ws, "local/time")
        await wait_for(sup, server_id, "healthy", 10)


async def test_stats_and_live_logs_stream(time_server) -> None:  # noqa: ANN001
    ws, server_id, _label = time_server
    [container] = docker.from_env().containers.list(filters={"label": f"io.tbx.server={server_id}"})
    samples = []
    async for sample in streams.stats(Endpoint.parse(None), container.id):
        samples.append(sample)
        if len(samples) == 2:
            break
    assert samples[-1].memory_bytes > 1_000_000
    assert samples[-1].memory_limit == ws.repos.servers.get(server_id).limits.memory_mb * 1024 * 1024
    assert samples[-1].pids >= 1

    lines: list[str] = []

    async def follow() -> None:
        async for line in server_status.log_lines(ws, "local/time", follow=True, tail=0):
            lines.append(line)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.5)
    assert lines == [], "tail=0 shows no history"
    # mcp-server-time writes a line to stderr for every failed call.
    await asyncio.to_thread(server_status.call_tool, ws, "local/time/convert_time",
                            {"source_timezone": "Nowhere/Land", "time": "12:00", "target_timezone": "UTC"})
    deadline = time.monotonic() + 10
    while not lines and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    task.cancel()
    assert len(lines) == 1 and "Invalid timezone" in lines[0] and "Nowhere/Land" in lines[0]
