"""Calls held on a remote toolbox's gateway, decided from here (issue 18): an adopted SSH
host (a real sshd on loopback, this machine's engine behind it) runs its own gateway and
the `time` server; a real SDK agent calls through that gateway over TLS, and the owner
lists and decides with `tbx approvals` as a user types it, over the SSH link.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import docker
import httpx2
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from console.catalog import load_catalog
from console.gateway.approvals_http import mint_control_token
from console.model import GrantMode, Toolbox
from console.remote.deploy import LABEL_GATEWAY_OF, control_socket, mirror_for, tls_context
from console.remote.links import open_tunnel
from console.remote.sshkeys import generate_keypair
from console.services import agents, grants, servers
from console.services import remote_toolboxes as remote
from console.services.grants import Target
from console.services.tools import approve
from console.workspace import Workspace
from tests.remote.conftest import wipe_toolbox
from tests.support.gateway import agent, eventually, tool_names
from console.tui import approvals_feed
from console.tui.approvals_feed import ApprovalsFeed
from console.tui.backend import Backend
from tests.support.sshd import Sshd

pytestmark = [pytest.mark.docker, pytest.mark.passphrase_ways("set")]
TOOL = "time__get_current_time"


@dataclass
class Far:
    ws: Workspace
    box: Toolbox
    tbx: object

    def asker(self, name: str) -> str:
        """An agent whose get_current_time calls on the toolbox wait for the owner; its token."""
        _agent, token = agents.add_agent(self.ws, name)
        grants.grant(self.ws, name, Target.parse("far"))
        grants.grant(self.ws, name, Target.parse("far/time/get_current_time"), ask=True)
        assert remote.sync(self.ws, self.box).pushed
        return token

    @asynccontextmanager
    async def agent(self, name: str) -> AsyncIterator[tuple[Client, str]]:
        """A new asking agent's SDK client and token, once the gateway lists it the tool."""
        token = await asyncio.to_thread(self.asker, name)
        async with agent(self.box.gateway_address, token, verify=tls_context(self.box.gateway_cert)) as client:
            await eventually(lambda: _lists(client), within=15)
            yield client, token

    async def run(self, *args: str) -> str:
        done = await asyncio.to_thread(self.tbx, *args)  # type: ignore[operator]
        assert done.exit_code == 0, (args, done.stdout, done.stderr)
        return done.stdout

    async def held(self, name: str) -> dict:
        found: list[dict] = []

        async def check() -> bool:
            nonlocal found
            found = [p for p in json.loads(await self.run("approvals", "list", "--json")) if p["agent"] == name]
            return len(found) == 1

        await eventually(check, 20, 0.2)
        return found[0]

    def grant_of(self, name: str):  # noqa: ANN201 - the agent's own grant of get_current_time
        self.ws.refresh()
        agent_id = self.ws.repos.agents.require(name).id
        server = self.ws.repos.servers.by_name(self.box.id, "time")
        return self.ws.repos.tool_grants.get(f"{agent_id}|{server.id}|get_current_time")


@pytest.fixture
def far(workspace: Workspace, tbx, docker_engine) -> Iterator[Far]:  # noqa: ANN001
    private, public = generate_keypair("tbx-test")
    sshd = Sshd([public], host=f"127.{random.randint(20, 250)}.11.{random.randint(2, 250)}", port=2222)
    sshd.start()
    box = None
    try:
        box = remote.add_ssh(workspace, "far", f"root@{sshd.host}:{sshd.port}", private,
                             accept_host_key=lambda _fp: True).toolbox
        servers.add_server(workspace, "far", load_catalog(workspace.paths).get("time"))
        approve(workspace, "far", "time")
        yield Far(workspace, workspace.repos.toolboxes.require("far"), tbx)
    finally:
        if box is not None:
            wipe_toolbox(box.id)
        sshd.close()


async def refused(call: asyncio.Future) -> str:
    with pytest.raises(MCPError) as err:
        await asyncio.wait_for(call, 20)
    return err.value.error.message


async def test_remote_held_calls_are_listed_and_decided_from_here(far: Far) -> None:
    async with far.agent("roamer") as (client, _token):

        call = asyncio.ensure_future(client.call_tool(TOOL, {"timezone": "UTC"}))
        pending = await far.held("roamer")
        assert (pending["target"], pending["toolbox"], pending["arguments"]) == \
            ("tool:far/time/get_current_time", "far", {"timezone": "UTC"})
        assert not call.done()
        shown = await far.run("approvals", "allow", pending["id"])
        assert '"timezone": "UTC"' in shown and "allowed" in shown
        result = await asyncio.wait_for(call, 20)
        assert not result.is_error and "UTC" in result.content[0].text  # type: ignore[union-attr]

        call = asyncio.ensure_future(client.call_tool(TOOL, {"timezone": "Europe/Paris"}))
        pending = await far.held("roamer")
        await far.run("approvals", "deny", pending["id"], "--toolbox", "far")
        assert "the owner denied the call" in await refused(call)

        # Allow for a while: a grant in the owner's vault here, pushed; the next call is not held.
        call = asyncio.ensure_future(client.call_tool(TOOL, {"timezone": "Asia/Tokyo"}))
        pending = await far.held("roamer")
        await far.run("approvals", "allow", pending["id"], "--for", "10m")
        assert "Tokyo" in (await asyncio.wait_for(call, 20)).content[0].text  # type: ignore[union-attr]
        own = far.grant_of("roamer")
        assert own is not None and own.mode is GrantMode.ASK and own.allow_until is not None
        again = await asyncio.wait_for(client.call_tool(TOOL, {"timezone": "UTC"}), 20)
        assert not again.is_error, "the allow-for grant did not reach the toolbox's gateway"
    assert json.loads(await far.run("approvals", "list", "--json")) == []


async def test_remote_always_deny_is_a_grant_pushed_from_here(far: Far) -> None:
    async with far.agent("doubted") as (client, _token):
        call = asyncio.ensure_future(client.call_tool(TOOL, {"timezone": "UTC"}))
        pending = await far.held("doubted")
        await far.run("approvals", "deny", pending["id"], "--always")
        assert "the owner denied the call" in await refused(call)
        assert far.grant_of("doubted").mode is GrantMode.DENY
        # Pushed with the command: the gateway refuses at once, nothing is held.
        message = await refused(asyncio.ensure_future(client.call_tool(TOOL, {"timezone": "UTC"})))
        assert "denied" in message or "not" in message
    assert json.loads(await far.run("approvals", "list", "--json")) == []
    # A toolbox whose gateway does not answer is named, not a failure of the whole list.
    [gateway] = docker.from_env().containers.list(filters={"label": f"{LABEL_GATEWAY_OF}={far.box.id}"})
    await asyncio.to_thread(gateway.stop, timeout=5)
    listed = await far.run("approvals", "list")
    assert "no call is waiting" in listed and "not asked: the gateway of far does not answer" in listed


async def test_a_stolen_agent_token_cannot_decide_a_remote_call(far: Far) -> None:
    key = mirror_for(far.ws, far.box).owner_key()
    async with far.agent("stolen") as (client, token):
        call = asyncio.ensure_future(client.call_tool(TOOL, {"timezone": "UTC"}))
        pending = await far.held("stolen")
        tunnel = await asyncio.to_thread(open_tunnel, far.ws, far.box, 10.0, control_socket(far.box))
        try:
            owner_socket = httpx2.AsyncHTTPTransport(uds=str(tunnel.forward.local_path))
            async with httpx2.AsyncClient(transport=owner_socket, base_url="http://owner.tbx", timeout=10) as door:
                for credential in (token, mint_control_token(b"k" * 32, "mallory"), "tbx_" + "a" * 43):
                    headers = {"authorization": f"Bearer {credential}"}
                    listed = await door.get("/approvals", headers=headers)
                    assert listed.status_code == 401 and pending["id"] not in listed.text
                    decided = await door.post(f"/approvals/{pending['id']}", headers=headers,
                                              json={"decision": "allow", "sha256": pending["sha256"]})
                    assert decided.status_code == 401
                # The owner's own token cannot make a grant on the toolbox: its vault is a mirror.
                owner = {"authorization": f"Bearer {mint_control_token(key, 'test')}"}
                grant_there = await door.post(f"/approvals/{pending['id']}", headers=owner,
                                              json={"decision": "allow", "sha256": pending["sha256"], "minutes": 5})
                assert grant_there.status_code == 400
            # The internet-facing port has no owner's door at all, not even for the owner's token.
            async with httpx2.AsyncClient(verify=tls_context(far.box.gateway_cert), timeout=10) as public:
                for credential in (token, mint_control_token(key, "test")):
                    there = await public.get(f"{far.box.gateway_address}/approvals",
                                             headers={"authorization": f"Bearer {credential}"})
                    assert there.status_code == 404 and pending["id"] not in there.text
        finally:
            await asyncio.to_thread(tunnel.close)
        assert not call.done()
        await far.run("approvals", "deny", pending["id"])
        assert "the owner denied the call" in await refused(call)


async def test_the_console_follows_and_decides_remote_calls_over_its_link(far: Far) -> None:
    """The console's feed of a remote toolbox rides the link it keeps open to the toolbox's
    engine: the held call comes through it, and "allow for" from there becomes a grant here."""
    link = await asyncio.to_thread(open_tunnel, far.ws, far.box)  # the console's link: the engine's socket
    backend = Backend(far.ws.paths)
    backend.ws = far.ws
    feed = ApprovalsFeed(approvals_feed.remote(backend, far.box, lambda: link))
    seen: list[list[dict]] = []
    following = asyncio.ensure_future(feed.run(seen.append))

    async def shown(count: int) -> bool:
        return bool(seen) and len(seen[-1]) == count

    try:
        async with far.agent("watched") as (client, _token):
            call = asyncio.ensure_future(client.call_tool(TOOL, {"timezone": "UTC"}))
            await eventually(lambda: shown(1), 20)
            (pending,) = seen[-1]
            assert (pending["agent"], pending["toolbox"]) == ("watched", "far")
            assert feed.gateway is not None
            outcome = await asyncio.to_thread(feed.gateway.decide, pending["id"], pending["sha256"], allow=True,
                                              minutes=10)
            assert outcome == "allowed-for"
            assert "UTC" in (await asyncio.wait_for(call, 20)).content[0].text  # type: ignore[union-attr]
            await eventually(lambda: shown(0), 20)
        own = far.grant_of("watched")
        assert own is not None and own.mode is GrantMode.ASK and own.allow_until is not None
    finally:
        following.cancel()
        await asyncio.to_thread(link.close)


async def _lists(client: Client) -> bool:
    return TOOL in await tool_names(client)
