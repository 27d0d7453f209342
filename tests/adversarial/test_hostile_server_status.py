"""The servers' status on a remote toolbox's owner's door (``GET /servers``, issue 21)
against those who should not read it, and a toolbox that answers with junk: the console
takes its answer for no more than it may say."""

from __future__ import annotations

import json

import httpx2
import pytest

from console.gateway.approvals_http import mint_control_token
from console.gateway.auth import mint_owner_token, owner_key
from console.gateway.remote_server_health import MAX_ERROR, _parsed
from console.services.server_status import StatusUnknown
from tests.adversarial import test_hostile_owner_socket as owner_socket
from tests.adversarial.test_hostile_owner_socket import asking, knock, owner
from tests.gateway.conftest import Stack
from tests.support.gateway import eventually

door = owner_socket.door
"""The gateway whose owner's door is a Unix socket, as on a droplet."""


@pytest.mark.docker
@pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")
async def test_only_the_owner_reads_the_servers_status_and_only_on_the_socket(door: tuple[Stack, str]) -> None:
    stack, socket_path = door
    _name, agent_id, token = asking(stack)
    key = owner_key(stack.ws)
    server_id = stack.ws.repos.servers.by_name(stack.ws.repos.toolboxes.require("local").id, "time").id  # type: ignore[union-attr]
    the_owner = owner(stack, socket_path)
    for credential in (token, mint_owner_token(key, agent_id), mint_control_token(b"k" * 32, "mallory"),
                       mint_control_token(key, "test", ttl=-10), "tbx_" + "a" * 43, "x" * 9000, None):
        refused = await knock(socket_path, "GET", "/servers", credential)
        assert refused.status_code == 401 and server_id not in refused.text, credential
    for method in ("POST", "PUT", "DELETE"):
        answered = await knock(socket_path, method, "/servers", the_owner.token, {"id": server_id, "health": "down"})
        assert answered.status_code == 405
    async with httpx2.AsyncClient(timeout=10) as http:  # the port agents reach has no such door
        for credential in (token, the_owner.token):
            there = await http.get(f"{stack.url}/servers", headers={"authorization": f"Bearer {credential}"})
            assert there.status_code == 404 and server_id not in there.text

    async def healthy() -> bool:
        listed = (await knock(socket_path, "GET", "/servers/", the_owner.token)).json()["servers"]
        return any(s["id"] == server_id and s["health"] == "healthy" for s in listed)

    await eventually(healthy, 30, 0.2)


def _answer(body: object) -> httpx2.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx2.Response(200, content=content, headers={"content-type": "application/json"})


def test_a_lying_toolbox_answer_is_taken_for_what_it_may_say() -> None:
    for junk in (b"<html>", b"[1, 2]", {"servers": "all fine"}, {"servers": None}, b"\xff\xfe"):
        with pytest.raises(StatusUnknown):
            _parsed(_answer(junk))
    seen = _parsed(_answer({"servers": [
        {"id": "srv_1", "health": "healthy\u001b[2J", "ping_ms": -5, "error": "e" * 100_000},
        {"id": "srv_2", "health": "healthy", "ping_ms": True, "error": {"nested": 1}},
        {"id": "srv_5", "health": "down", "error": "gone\n\u001b]52;c;Y2xpcA==\u0007\rfine"},
        {"id": "srv_3", "health": "healthy", "ping_ms": 12.5, "error": None},
        {"id": 7, "health": "healthy"}, "srv_4", None,
    ]}))
    assert set(seen) == {"srv_1", "srv_2", "srv_3", "srv_5"}
    assert seen["srv_5"].error is not None and seen["srv_5"].error.isprintable()  # no escape reaches the terminal
    assert (seen["srv_1"].health, seen["srv_1"].ping_ms, len(seen["srv_1"].error or "")) == ("unknown", None, MAX_ERROR)
    assert (seen["srv_2"].health, seen["srv_2"].ping_ms, seen["srv_2"].error) == ("healthy", None, None)
    assert (seen["srv_3"].health, seen["srv_3"].ping_ms) == ("healthy", 12.5)
    infinite = _parsed(httpx2.Response(200, content=b'{"servers": [{"id": "s", "health": "down", "ping_ms": Infinity}]}'))
    assert infinite["s"].ping_ms is None
