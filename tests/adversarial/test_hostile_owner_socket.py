"""A remote toolbox's owner's door against those who should not open it (issue 18): a
gateway serving its approvals on a Unix socket (``--control-socket``, as on a droplet)
answers agents' tokens, forged ones and hostile bodies with refusals, and its port (the
one facing the internet) has no door at all. And a toolbox that lies: a held call that
names a server of another toolbox gets no grant written in the owner's vault.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from console.errors import NotFound
from console.gateway.approvals_client import GatewayApprovals
from console.gateway.approvals_http import mint_control_token
from console.gateway.auth import mint_owner_token, owner_key
from console.gateway.remote_approvals import RemoteApprovals
from console.services import grants, toolboxes
from console.services.grants import Target
from tests.gateway.conftest import Stack, _stack
from tests.support.gateway import agent, eventually
from tests.support.sharedkeys import shared_keyring_home

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]
TOOL = "time__get_current_time"


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> Iterator[tuple[Stack, str]]:  # noqa: ANN001
    """A gateway of toolbox local (server time) whose owner's door is a Unix socket; (stack, socket)."""
    root = tmp_path_factory.mktemp("door")
    short = tempfile.mkdtemp(prefix="tbx-door-")  # sun_path holds 107 bytes; pytest's folders are deep
    socket_path = os.path.join(short, "control.sock")
    try:
        with shared_keyring_home(root):
            for stack in _stack(root, ("time",), control_socket=socket_path):
                yield stack, socket_path
    finally:
        os.rmdir(short)


def owner(stack: Stack, socket_path: str) -> GatewayApprovals:
    return GatewayApprovals("local", "http://owner.tbx", mint_control_token(owner_key(stack.ws), "test"), socket_path)


def asking(stack: Stack) -> tuple[str, str, str]:
    name, token = stack.agent("local")
    grants.grant(stack.ws, name, Target.parse("local/time/get_current_time"), ask=True)
    return name, stack.ws.repos.agents.require(name).id, token


async def held(the_owner: GatewayApprovals, name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    async def check() -> bool:
        nonlocal found
        found = [p for p in (await asyncio.to_thread(the_owner.pending))[1] if p["agent"] == name]
        return len(found) == 1

    await eventually(check, 20, 0.05)
    return found[0]


async def knock(socket_path: str, method: str, path: str, token: str | None, body: Any = None) -> httpx2.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    content = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    async with httpx2.AsyncClient(transport=httpx2.AsyncHTTPTransport(uds=socket_path), base_url="http://owner.tbx",
                                  timeout=10) as http:
        return await http.request(method, path, headers=headers, content=content)


async def test_the_owners_socket_lets_no_agent_in_and_the_port_has_no_door(door: tuple[Stack, str]) -> None:
    stack, socket_path = door
    assert stat.S_IMODE(Path(socket_path).stat().st_mode) == 0o600
    name, agent_id, token = asking(stack)
    _other, _other_id, other_token = asking(stack)
    key = owner_key(stack.ws)
    the_owner = owner(stack, socket_path)
    async with agent(stack.url, token) as client:
        call = asyncio.ensure_future(client.call_tool(TOOL, {"timezone": "UTC"}))
        pending = await held(the_owner, name)
        path, good = f"/approvals/{pending['id']}", pending["sha256"]
        acting_as = mint_owner_token(key, agent_id)
        for credential in (token, other_token, acting_as, mint_control_token(b"k" * 32, "mallory"),
                           mint_control_token(key, "test", ttl=-10), "tbx_" + "a" * 43, None):
            listed = await knock(socket_path, "GET", "/approvals", credential)
            assert listed.status_code == 401 and pending["id"] not in listed.text, credential
            decided = await knock(socket_path, "POST", path, credential, {"decision": "allow", "sha256": good})
            assert decided.status_code == 401
        # Hostile bodies, and grants the toolbox's vault must not hold (the console writes them).
        for body in (b"{not json", b"x" * 10_000, {"decision": "allow", "sha256": good, "minutes": 5},
                     {"decision": "deny", "sha256": good, "always": True},
                     {"decision": "deny", "sha256": good, "always": False}):
            response = await knock(socket_path, "POST", path, the_owner.token, body)
            assert response.status_code == 400, (body, response.text)
        assert (await knock(socket_path, "POST", "/mcp", the_owner.token, {"jsonrpc": "2.0"})).status_code == 404
        # The port agents reach: no approvals there, whoever asks.
        async with httpx2.AsyncClient(timeout=10) as http:
            for credential in (token, the_owner.token):
                there = await http.get(f"{stack.url}/approvals", headers={"authorization": f"Bearer {credential}"})
                assert there.status_code == 404 and pending["id"] not in there.text
        assert not call.done()
        assert (await held(the_owner, name))["id"] == pending["id"]
        assert await asyncio.to_thread(the_owner.decide, pending["id"], good, allow=False) == "denied"
        with pytest.raises(MCPError):
            await asyncio.wait_for(call, 20)


async def test_a_call_naming_another_toolboxs_server_gets_no_grant(door: tuple[Stack, str]) -> None:
    """The console reads a remote call's agent, server and item from the toolbox: one that
    lies (a server of another toolbox of the owner's) is refused before anything is decided."""
    stack, socket_path = door
    name, agent_id, token = asking(stack)
    elsewhere = toolboxes.add_local(stack.ws, f"elsewhere-{agent_id[-6:]}")
    liar = RemoteApprovals("liar", "http://owner.tbx", owner(stack, socket_path).token, socket_path, ws=stack.ws,
                           box=elsewhere)
    async with agent(stack.url, token) as client:
        call = asyncio.ensure_future(client.call_tool(TOOL, {"timezone": "UTC"}))
        pending = await held(liar, name)
        for decision in ({"allow": True, "minutes": 30.0}, {"allow": False, "always": True}):
            with pytest.raises(NotFound, match="no grant was written"):
                await asyncio.to_thread(liar.decide, pending["id"], pending["sha256"], **decision)
        stack.ws.refresh()
        own = [g for g in stack.ws.repos.tool_grants if g.agent == agent_id]
        assert [(g.tool, g.mode.value, g.allow_until) for g in own] == [("get_current_time", "ask", None)]
        assert not call.done() and (await held(liar, name))["id"] == pending["id"]
        await asyncio.to_thread(liar.decide, pending["id"], pending["sha256"], allow=False)
        with pytest.raises(MCPError):
            await asyncio.wait_for(call, 20)
