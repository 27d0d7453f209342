"""Agents see and call exactly what they were granted, and lose it the moment it is revoked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from datetime import timedelta

import docker
import pytest
from mcp.shared.exceptions import MCPError

from console.services import agents, grants, servers
from console.services.grants import Target
from tests.gateway.conftest import Stack, subprocess_env
from tests.support.gateway import agent, eventually, tool_names
from tests.support.rawmcp import ACCEPT, RawAgent

pytestmark = pytest.mark.docker


def exposable(stack: Stack, server: str) -> list[str]:
    stack.ws.refresh()
    box = stack.ws.repos.toolboxes.require("local")
    found = stack.ws.repos.servers.by_name(box.id, server)
    assert found is not None
    return sorted(t.name for t in stack.ws.repos.tools.of_server(found.id) if t.exposable and t.kind.value == "tool")


async def refused(call) -> str:  # noqa: ANN001
    with pytest.raises(MCPError) as err:
        await call
    return err.value.error.message


async def test_each_agent_sees_exactly_its_grants(stack: Stack) -> None:
    _a, one_tool = stack.agent("local", "local/time/get_current_time")
    _b, whole_server = stack.agent("local", "local/everything")
    everything = exposable(stack, "everything")
    assert len(everything) >= 5
    async with agent(stack.url, one_tool) as a, agent(stack.url, whole_server) as b:
        assert await tool_names(a) == ["time__get_current_time"]
        assert await tool_names(b) == [f"everything__{name}" for name in everything]
        result = await a.call_tool("time__get_current_time", {"timezone": "Europe/Paris"})
        assert not result.is_error and "Europe/Paris" in result.content[0].text
        echoed = await b.call_tool("everything__echo", {"message": "hi from b"})
        assert "Echo: hi from b" in echoed.content[0].text
        # Neither can reach the other's tools, nor learn whether they exist.
        assert await refused(a.call_tool("everything__echo", {"message": "x"})) == \
            "tool 'everything__echo' is not granted to this agent"
        assert await refused(b.call_tool("time__get_current_time", {"timezone": "UTC"})) == \
            "tool 'time__get_current_time' is not granted to this agent"
        assert await refused(a.call_tool("time__no_such_tool", {})) == \
            "tool 'time__no_such_tool' is not granted to this agent"
    async with agent(stack.url, one_tool, "/servers/time/mcp") as per_server:
        assert await tool_names(per_server) == ["get_current_time"]
        result = await per_server.call_tool("get_current_time", {"timezone": "UTC"})
        assert not result.is_error
    async with agent(stack.url, one_tool, "/servers/everything/mcp") as elsewhere:
        assert await tool_names(elsewhere) == []


async def test_revoking_the_toolbox_cuts_every_agent_within_a_second(stack: Stack) -> None:
    a_name, a_token = stack.agent("local", "local/time/get_current_time")
    b_name, b_token = stack.agent("local", "local/time")
    changed: list[str] = []

    def note(message: object) -> None:
        method = getattr(getattr(message, "root", message), "method", None)
        if method:
            changed.append(method)

    async with agent(stack.url, a_token, on_message=note) as a, agent(stack.url, b_token) as b:
        assert await tool_names(a) == ["time__get_current_time"]
        assert "time__convert_time" in await tool_names(b)
        await asyncio.sleep(0.3)  # the event stream is open
        started = time.monotonic()
        grants.revoke(stack.ws, a_name, Target.parse("local"))
        grants.revoke(stack.ws, b_name, Target.parse("local"))

        async def both_cut() -> bool:
            return await tool_names(a) == [] and await tool_names(b) == []

        await eventually(both_cut, within=1.0)
        assert time.monotonic() - started < 1.0
        await refused(a.call_tool("time__get_current_time", {"timezone": "UTC"}))
        await eventually(lambda: asyncio.sleep(0, "notifications/tools/list_changed" in changed), within=2.0)
        # The kill switch keeps the tool grants: opening the toolbox again restores them.
        grants.grant(stack.ws, a_name, Target.parse("local"))

        async def back() -> bool:
            return await tool_names(a) == ["time__get_current_time"]

        await eventually(back, within=1.0)


async def test_git_and_filesystem_through_the_gateway(stack: Stack) -> None:
    _name, token = stack.agent("local", "local/git/git_log", "local/filesystem/write_file",
                               "local/filesystem/read_text_file")
    async with agent(stack.url, token) as client:
        assert await tool_names(client) == ["filesystem__read_text_file", "filesystem__write_file", "git__git_log"]
        log = await client.call_tool("git__git_log", {"repo_path": "/repo"})
        assert "Add notes" in log.content[0].text
        await client.call_tool("filesystem__write_file", {"path": "/data/from-agent.txt", "content": "hello"})
        assert (stack.root / "data" / "from-agent.txt").read_text() == "hello"
        read = await client.call_tool("filesystem__read_text_file", {"path": "/data/from-agent.txt"})
        assert read.content[0].text == "hello"
        with pytest.raises(MCPError, match="not granted"):
            await client.call_tool("git__git_commit", {"repo_path": "/repo", "message": "sneaky"})


async def test_an_expired_grant_stops_working(stack: Stack) -> None:
    name, token = stack.agent("local")
    grants.grant(stack.ws, name, Target.parse("local/time/get_current_time"), timedelta(seconds=2))
    async with agent(stack.url, token) as client:
        await eventually(lambda: _has(client, "time__get_current_time"), within=1.0)
        assert not (await client.call_tool("time__get_current_time", {"timezone": "UTC"})).is_error
        await asyncio.sleep(2.2)
        await refused(client.call_tool("time__get_current_time", {"timezone": "UTC"}))
        assert await tool_names(client) == []


async def _has(client, name: str) -> bool:  # noqa: ANN001
    return name in await tool_names(client)


async def test_disabled_agents_are_refused_at_the_door(stack: Stack) -> None:
    name, token = stack.agent("local", "local/time")
    agents.set_enabled(stack.ws, name, False)
    await asyncio.sleep(0.5)
    with pytest.raises(Exception):  # noqa: B017 - the SDK wraps the 401 in its own error types
        async with agent(stack.url, token) as client:
            await client.list_tools()


async def test_every_refusal_is_audited(stack: Stack) -> None:
    name, token = stack.agent("local", "local/time/get_current_time")
    async with agent(stack.url, token) as client:
        await refused(client.call_tool("time__convert_time", {"source_timezone": "UTC", "time": "10:00",
                                                              "target_timezone": "UTC"}))
        await refused(client.call_tool("secret__exfiltrate", {}))
        try:
            await client.call_tool("time__get_current_time", {"timezone": "UTC"})
        except MCPError as exc:  # it once was, on a fresh machine: say why if it is again
            stack.gateway.flush_audit()
            stack.ws.refresh()
            last = [r["detail"] for r in stack.ws.audit.records() if r.get("agent") == name][-1:]
            pytest.fail(f"the allowed call was refused: {exc}; its audit record: {last}")
    stack.gateway.flush_audit()
    stack.ws.refresh()
    mine = [r for r in stack.ws.audit.records() if r.get("agent") == name and r["action"] == "tool.call"]
    assert [(r["target"], r["decision"]) for r in mine] == [
        ("tool:local/time/convert_time", "deny"),
        ("tool:secret__exfiltrate", "deny"),
        ("tool:local/time/get_current_time", "allow"),
    ]
    assert mine[0]["detail"]["reason"] == "no-tool-grant" and "no grant for time/convert_time" in mine[0]["detail"]["why"]
    assert mine[1]["detail"]["reason"] == "unknown-tool"
    assert mine[2]["actor"] == f"agent:{name}" and mine[2]["detail"]["latency_ms"] > 0
    assert stack.ws.audit.verify(stack.ws.audit_checkpoint).ok


async def test_same_tool_names_on_two_servers_never_collide(stack: Stack) -> None:
    tool = {"name": "hello", "description": "Says hello.", "inputSchema": {"type": "object", "properties": {}}}
    await asyncio.to_thread(stack.add_shapeshifter, "alpha", [tool])
    await asyncio.to_thread(stack.add_shapeshifter, "beta", [tool])
    _name, token = stack.agent("local", "local/alpha", "local/beta")
    async with agent(stack.url, token) as client:
        await eventually(lambda: _has(client, "beta__hello"), within=5.0)
        assert await tool_names(client) == ["alpha__hello", "beta__hello"]
        assert (await client.call_tool("alpha__hello", {})).content[0].text.startswith("alpha: hello called")
        assert (await client.call_tool("beta__hello", {})).content[0].text.startswith("beta: hello called")
    async with agent(stack.url, token, "/servers/beta/mcp") as beta:
        assert await tool_names(beta) == ["hello"]
        assert (await beta.call_tool("hello", {})).content[0].text.startswith("beta: hello called")


async def test_resources_and_prompts_are_granted_like_tools(stack: Stack) -> None:
    """A grant on one tool gives none of the server's resources or prompts; ``server/*`` gives
    every approved one, from the real server-everything."""
    _one, one_tool = stack.agent("local", "local/everything/echo")
    _all, whole_server = stack.agent("local", "local/everything")
    async with agent(stack.url, whole_server) as client:
        resources = (await client.list_resources()).resources
        assert resources, "everything serves resources to an agent granted the whole server"
        read = await client.read_resource(resources[0].uri)
        assert read.contents
        prompts = (await client.list_prompts()).prompts
        assert prompts and all(p.name.startswith("everything__") for p in prompts)
    async with agent(stack.url, one_tool) as client:
        assert (await client.list_resources()).resources == []
        assert (await client.list_prompts()).prompts == []
        with pytest.raises(MCPError):
            await client.read_resource(resources[0].uri)


# -- a refusal is never a moment stale (the flaky test above, issue 13) ------------------------
#
# test_every_refusal_is_audited once failed on a fresh machine: its allowed call was refused
# "not granted". Every grant is written before the agent connects, and each request first
# asks whether the vault changed (one stat), so a grant made before a request is seen by
# it, however the gateway's own writes interleave (the hammer below never saw a miss). Two
# things could still answer a granted call with "not granted": a grant written while the
# request's body was on the way (its snapshot was taken at its headers), and a granted
# tool whose server was not running at that moment (the refusal then said "not granted"
# too). The first is now decided again on the new policy; the second says what it is.


async def _call_with_a_slow_body(url: str, token: str, session: str, name: str, between) -> dict:  # noqa: ANN001
    """tools/call whose body arrives in two parts, ``between()`` running in between."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                       "params": {"name": name, "arguments": {"timezone": "UTC"}}}).encode()
    head = (f"POST /mcp HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nAccept: {ACCEPT}\r\nMcp-Session-Id: {session}\r\n"
            f"Mcp-Protocol-Version: 2025-11-25\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head + body[:10])
        await writer.drain()
        await between()
        writer.write(body[10:])
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    return json.loads(response.split(b"\r\n\r\n", 1)[1])


async def test_a_grant_made_while_the_call_is_on_the_way_is_in_force(stack: Stack) -> None:
    for round_ in range(3):
        name, token = stack.agent("local")
        with RawAgent(stack.url, token) as raw:
            session = raw.initialize()
        before = stack.gateway.call(lambda gw: gw.snapshots.current.generation)

        async def grant(name: str = name, before: int = before) -> None:
            await asyncio.to_thread(grants.grant, stack.ws, name, Target.parse("local/time/get_current_time"))

            async def swapped() -> bool:  # the file watch has reloaded the policy meanwhile
                return stack.gateway.call(lambda gw: gw.snapshots.current.generation) > before

            await eventually(swapped, within=5.0)

        reply = await _call_with_a_slow_body(stack.url, token, session, "time__get_current_time", grant)
        assert "result" in reply, f"round {round_}: {reply}"
        assert not reply["result"].get("isError")


async def test_grants_and_revokes_are_in_force_for_the_very_next_call(stack: Stack) -> None:
    """Grant then call at once, revoke then call at once, six agents side by side while the
    gateway writes its own audit records into the same vault; and grants by another process."""
    missed: list[str] = []
    tool = Target.parse("local/time/get_current_time")

    async def one(i: int, name: str, token: str) -> None:
        async with agent(stack.url, token) as client:
            for j in range(6):
                await asyncio.to_thread(grants.grant, stack.ws, name, tool)
                try:
                    await client.call_tool("time__get_current_time", {"timezone": "UTC"})
                except MCPError as exc:
                    missed.append(f"agent {i} round {j}: granted, refused: {exc}")
                await asyncio.to_thread(grants.revoke, stack.ws, name, tool)
                with contextlib.suppress(MCPError):
                    await client.call_tool("time__get_current_time", {"timezone": "UTC"})
                    missed.append(f"agent {i} round {j}: revoked, allowed")

    agents_ = [stack.agent("local") for _ in range(6)]
    await asyncio.gather(*(one(i, name, token) for i, (name, token) in enumerate(agents_)))
    for i in range(3):
        name, token = stack.agent("local")
        done = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "console", "grant", name, "local/time/get_current_time", env=subprocess_env(),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _out, err = await done.communicate()
        assert done.returncode == 0, err
        async with agent(stack.url, token) as client:
            try:
                await client.call_tool("time__get_current_time", {"timezone": "UTC"})
            except MCPError as exc:
                missed.append(f"tbx grant {i}: refused: {exc}")
    assert missed == []


async def test_a_granted_tool_whose_server_is_down_says_so(stack: Stack) -> None:
    tool = {"name": "hello", "description": "Says hello.", "inputSchema": {"type": "object", "properties": {}}}
    await asyncio.to_thread(stack.add_shapeshifter, "gadget", [tool])
    name, token = stack.agent("local", "local/gadget/hello")
    async with agent(stack.url, token) as client:
        assert not (await client.call_tool("gadget__hello", {})).is_error
        box = stack.ws.repos.toolboxes.require("local")
        server = stack.ws.repos.servers.by_name(box.id, "gadget")
        (container,) = docker.from_env().containers.list(filters={"label": f"io.tbx.server={server.id}"})
        await asyncio.to_thread(container.kill)  # down, and Docker leaves it down: the owner wants it running

        # within 30 s: under load one call may wait out the session's reconnection (10 s) first
        await eventually(lambda: _refusal(client, "server gadget is not running right now; try again in a moment"),
                         within=30.0)
        await asyncio.to_thread(servers.stop_server, stack.ws, "local/gadget")
        await eventually(lambda: _refusal(client, "server gadget is stopped; its owner can start it"), within=30.0)
    stack.gateway.flush_audit()
    stack.ws.refresh()
    mine = [r for r in stack.ws.audit.records() if r.get("agent") == name and r["action"] == "tool.call"]
    assert mine[-1]["decision"] == "deny" and mine[-1]["detail"]["reason"] == "server-not-running"
    assert mine[-1]["detail"]["why"] == "server gadget is not running ('tbx server start local/gadget')"
    await asyncio.to_thread(servers.remove_server, stack.ws, "local/gadget")


async def _refusal(client, message: str) -> bool:  # noqa: ANN001
    try:
        await client.call_tool("gadget__hello", {})
    except MCPError as exc:
        return exc.error.message == message
    return False
