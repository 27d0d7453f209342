"""A server of the 2026-07-28 era that abuses input-required results: asking forever, asking
for too much or for what no agent answers, or hoping its requestState reaches the agent
(to be changed there); and an agent asking for log messages at a level that does not
exist. The server is the shapeshifter in its 2026-only mode, saying exactly what the
test makes it say."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import mcp_types as types
import pytest
from mcp import MCPError

from console.gateway.upstream_input import MAX_REQUESTS, MAX_ROUNDS
from console.services.server_asks import set_may_ask
from tests.adversarial.test_hostile_notifications import HIDDEN, RESOURCE
from tests.adversarial.test_request_checks import server_log, tool
from tests.gateway.conftest import Stack
from tests.support.asking import asking_agent
from tests.support.gateway import agent, eventually
from tests.support.rawmcp import envelope, stateless

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]
SERVER = "inputs26"
STATE = "server-secret-state-7Qw"


def form(message: str = "Name?") -> dict:
    return {"method": "elicitation/create", "params": {
        "mode": "form", "message": message,
        "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}}}}


def wanting(requests: Any, state: str | None = STATE) -> dict:
    """The arguments that make the server answer with this input-required result."""
    result: dict[str, Any] = {"resultType": "input_required", "inputRequests": requests}
    if state is not None:
        result["requestState"] = state
    return {"result": result}


@pytest.fixture(scope="module")
def asker(stack: Stack) -> str:
    stack.add_shapeshifter(SERVER, {"era": "2026-07-28", "tools": [tool("answer")]})
    set_may_ask(stack.ws, f"local/{SERVER}", "elicitation", True)
    return SERVER


def inputs(stack: Stack) -> list[dict]:
    return [json.loads(line.partition(" ")[2]) for line in server_log(stack, SERVER).splitlines()
            if line.startswith("input ")]


async def elicited(context: Any, params: Any) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"name": "Ada"})


async def test_a_server_that_asks_forever_is_stopped(stack: Stack, asker: str) -> None:
    """The agent answers every round; the gateway stops after its limit, with why."""
    _name, token = stack.agent("local", f"local/{asker}/answer")
    before = len(inputs(stack))
    async with asking_agent(stack.url, token, f"/servers/{asker}/mcp", elicitation_callback=elicited) as client:
        with pytest.raises(MCPError, match=f"still asked for input after {MAX_ROUNDS} rounds"):
            await client.call_tool("answer", wanting({"again": form()}))
    assert len(inputs(stack)) - before == MAX_ROUNDS + 1  # the call, then once per round of answers


@pytest.mark.parametrize(("requests", "state", "why"), [
    ({f"r{n}": form() for n in range(MAX_REQUESTS + 1)}, STATE, "requests"),
    ({"run": {"method": "tools/call", "params": {"name": "answer"}}}, STATE, "not a request an agent answers"),
    (["not", "an", "object"], STATE, "malformed requests"),
    ({}, None, "0 requests"),
])
async def test_input_requests_no_agent_should_get_end_the_call(stack: Stack, asker: str, requests: Any,
                                                               state: str | None, why: str) -> None:
    _name, token = stack.agent("local", f"local/{asker}/answer")
    asked: list[str] = []

    async def elicitation(context: Any, params: Any) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    async with asking_agent(stack.url, token, f"/servers/{asker}/mcp", elicitation_callback=elicitation) as client:
        with pytest.raises(MCPError, match=why):
            await client.call_tool("answer", wanting(requests, state))
    assert asked == []


def test_the_servers_request_state_stays_in_the_gateway(stack: Stack, asker: str) -> None:
    """A stateless agent sees the gateway's own requestState and request ids, never the
    server's; what it answers reaches the server under the server's own key and state."""
    _name, token = stack.agent("local", f"local/{asker}/answer")
    url = f"{stack.url}/servers/{asker}/mcp"
    arguments = wanting({"who": form("Who are you?")})
    meta = {**envelope(), "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}}}
    first = stateless(url, token, "tools/call", {"name": "answer", "arguments": arguments}, meta=meta)
    result = first.json()["result"]
    assert result["resultType"] == "input_required" and STATE not in first.text
    [(gateway_id, request)] = result["inputRequests"].items()
    assert gateway_id != "who" and request["params"]["message"] == "Who are you?"
    again = stateless(url, token, "tools/call", {
        "name": "answer", "arguments": arguments, "requestState": result["requestState"],
        "inputResponses": {gateway_id: {"action": "accept", "content": {"name": "Ada"}}}}, meta=meta)
    assert again.status_code == 200 and STATE not in again.text
    assert inputs(stack)[-1] == {"inputResponses": {"who": {"action": "accept", "content": {"name": "Ada"}}},
                                 "requestState": STATE}


def test_a_log_level_that_does_not_exist_is_refused(stack: Stack, asker: str) -> None:
    _name, token = stack.agent("local", f"local/{asker}/answer")
    reply = stateless(f"{stack.url}/servers/{asker}/mcp", token, "tools/call", {"name": "answer", "arguments": {}},
                      meta={**envelope(), "io.modelcontextprotocol/logLevel": "everything"})
    assert reply.status_code == 400 and "logLevel" in reply.json()["error"]["message"]


async def test_updates_come_through_the_gateways_listen_stream_only_as_subscribed(stack: Stack) -> None:
    """A handshake-era agent subscribes to a resource of a 2026-07-28 server: the gateway
    listens for it upstream (opening its stream again with the URI, then without it); the
    server's updates reach the agent only for that URI, without the gateway's own
    subscription id; the one it does not grant is refused as for any server."""
    server = "loud26"
    await asyncio.to_thread(stack.add_shapeshifter, server,
                            {"era": "2026-07-28", "tools": [tool("say")], "resources": [RESOURCE, HIDDEN]})
    name, token = stack.agent("local", f"local/{server}/resource:{RESOURCE['uri']}", f"local/{server}/say")
    updates: list[types.ResourceUpdatedNotification] = []

    def on_message(message: object) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updates.append(message)

    def updated(uri: str) -> dict:
        return {"jsonrpc": "2.0", "method": "notifications/resources/updated",
                "params": {"uri": uri, "_meta": {"io.modelcontextprotocol/subscriptionId": "$LISTEN"}}}

    async with agent(stack.url, token, on_message=on_message) as client:
        with pytest.raises(Exception, match="not available"):
            await client.subscribe_resource(HIDDEN["uri"])
        await client.subscribe_resource(RESOURCE["uri"])
        await eventually(lambda: _async(RESOURCE["uri"] in listens(stack, server)[-1]), 10)
        await client.call_tool(f"{server}__say", {"lines": [updated(HIDDEN["uri"]), updated(RESOURCE["uri"])]})
        await eventually(lambda: _async(bool(updates)), 5)
        await client.unsubscribe_resource(RESOURCE["uri"])
        await eventually(lambda: _async(RESOURCE["uri"] not in listens(stack, server)[-1]), 10)
        await client.call_tool(f"{server}__say", {"lines": [updated(RESOURCE["uri"])]})
        await asyncio.sleep(0.5)
    assert [str(u.params.uri) for u in updates] == [RESOURCE["uri"]]
    assert "subscriptionId" not in json.dumps(updates[0].model_dump(by_alias=True))
    opened = listens(stack, server)
    assert [RESOURCE["uri"] in filter_ for filter_ in opened[-3:]] == [False, True, False]
    assert server_log(stack, server).count("cancelled tbxg-") >= 2  # each stream given up when replaced
    stack.gateway.flush_audit()
    assert [(r["action"], r["decision"]) for r in stack.ws.audit.records()
            if r.get("agent") == name and r["action"].startswith("resource.")] == [
        ("resource.subscribe", "deny"), ("resource.subscribe", "allow"), ("resource.unsubscribe", "allow")]


def listens(stack: Stack, server: str) -> list[str]:
    return [line for line in server_log(stack, server).splitlines() if line.startswith("listening ")]


async def _async(value: object) -> object:
    return value


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_a_new_era_server_that_leaks_is_masked_like_any(stack: Stack, mode: str) -> None:
    """Its secret in a result, in an error and in a resource never reaches either era's agent."""
    secret = "new-era-secret-Vb55-Qp09"
    server = "leaky2026"
    if not any(s.name == server for s in stack.ws.repos.servers.all()):
        await asyncio.to_thread(stack.add_shapeshifter, server, {
            "era": "2026-07-28", "tools": [tool("leak"), tool("fail")],
            "resources": [{"uri": "note://leaky", "name": "leaky"}]}, secrets={"LEAK_VALUE": secret})
    _name, token = stack.agent("local", f"local/{server}")
    async with agent(stack.url, token, f"/servers/{server}/mcp", mode=mode) as client:
        leaked = await client.call_tool("leak", {})
        with pytest.raises(MCPError) as failed:
            await client.call_tool("fail", {})
        read = await client.read_resource("note://leaky")
    seen = json.dumps([leaked.model_dump(mode="json"), str(failed.value), read.model_dump(mode="json")],
                      ensure_ascii=False)
    assert secret not in seen and "LEAK_VALUE›" in seen
