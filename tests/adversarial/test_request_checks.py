"""Arguments are checked whole, and a caller that hangs up stops its call upstream."""

from __future__ import annotations

import asyncio
import time

import docker
import httpx2
import pytest

from tests.gateway.conftest import Stack
from tests.support.rawmcp import ACCEPT, RawAgent, error_of, text_of

pytestmark = pytest.mark.docker

SECRET = "hunter2-Q9xLm3Vr7Tz"
"""A secret of the vault: no agent may send it to any server, wherever it hides it."""


def tool(name: str) -> dict:
    return {"name": name, "description": f"Does {name}.", "inputSchema": {"type": "object"}}


@pytest.fixture(scope="module")
def shifty(stack: Stack) -> str:
    stack.add_shapeshifter("shifty", [tool("echo"), tool("sleep"), tool("leak")], secrets={"LEAK_VALUE": SECRET})
    return "shifty"


def server_log(stack: Stack, server: str) -> str:
    stack.ws.refresh()
    box = stack.ws.repos.toolboxes.require("local")
    instance = stack.ws.repos.servers.by_name(box.id, server)
    assert instance is not None
    [container] = docker.from_env().containers.list(filters={"label": f"io.tbx.server={instance.id}"})
    return container.logs(stdout=False, stderr=True).decode()


def test_a_credential_anywhere_in_params_is_blocked(stack: Stack, shifty: str) -> None:
    name, token = stack.agent("local", f"local/{shifty}")
    hiding_places = [
        {"arguments": {"text": SECRET}},
        {"arguments": {"nested": [{"deeper": {"x": f"prefix {SECRET} suffix"}}]}},
        {"arguments": {SECRET: "as a key"}},
        {"arguments": {}, "_meta": {"note": SECRET}},
        {"arguments": {}, "_meta": {"progressToken": SECRET}},
        {"arguments": {}, "extra": {"x": SECRET}},
        {"arguments": {"token": "ghp_" + "a" * 36}},                       # a well-known token format
    ]
    with RawAgent(stack.url, token) as raw:
        raw.initialize()
        for params in hiding_places:
            reply = raw.call(f"{shifty}__echo", **params)
            assert reply.get("error", {}).get("code") == -32001, (params, reply)
        assert "called with" in text_of(raw.call(f"{shifty}__echo", {"text": "harmless"}))
    stack.gateway.flush_audit()
    blocked = [r for r in stack.ws.audit.records() if r.get("agent") == name and r["decision"] == "deny"]
    assert [r["detail"]["reason"] for r in blocked] == ["secret-in-request"] * len(hiding_places)
    assert SECRET not in stack.ws.paths.audit_log.read_text()
    assert "got tools/call" in server_log(stack, shifty)
    assert SECRET not in server_log(stack, shifty)


async def test_a_caller_that_hangs_up_cancels_its_call_upstream(stack: Stack, shifty: str) -> None:
    name, token = stack.agent("local", f"local/{shifty}")
    with RawAgent(stack.url, token) as raw:
        raw.initialize()
        session = raw.session
    body = {"jsonrpc": "2.0", "id": "slow-1", "method": "tools/call",
            "params": {"name": f"{shifty}__sleep", "arguments": {"seconds": 2.5}}}
    headers = {"authorization": f"Bearer {token}", "mcp-session-id": session or "", "accept": ACCEPT,
               "content-type": "application/json"}
    started = time.monotonic()
    async with httpx2.AsyncClient() as http:
        with pytest.raises(httpx2.TimeoutException):
            await http.post(stack.url + "/mcp", json=body, headers=headers, timeout=0.6)
    deadline = time.monotonic() + 5
    while "cancelled tbxg-" not in server_log(stack, shifty) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert "cancelled tbxg-" in server_log(stack, shifty)
    assert time.monotonic() - started < 2.5, "the cancellation reached the server before the call would end"
    stack.gateway.flush_audit()
    [call] = [r for r in stack.ws.audit.records() if r.get("agent") == name and r["action"] == "tool.call"]
    assert (call["decision"], call["detail"]["reason"]) == ("error", "client-disconnected")


def test_invalid_requests_never_reach_the_server(stack: Stack, shifty: str) -> None:
    _name, token = stack.agent("local", f"local/{shifty}")
    before = server_log(stack, shifty).count("got tools/call")
    with RawAgent(stack.url, token) as raw:
        raw.initialize()
        for params in ({"name": f"{shifty}__echo", "arguments": [1, 2]},
                       {"name": f"{shifty}__echo", "arguments": "text"},
                       {"name": f"{shifty}__echo", "_meta": "x"}):
            assert error_of(raw.request("tools/call", params))["code"] == -32602
    assert server_log(stack, shifty).count("got tools/call") == before
