"""Held calls against their owner: agents (with their own tokens, another's, or an owner
token made for acting as an agent) reaching for ``/approvals`` to list or decide calls,
their own included; decisions for other arguments than the call's; malformed decisions;
an agent holding more calls than it may (issue 18)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable
from typing import Any

import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from console.gateway.approvals_http import mint_control_token
from console.gateway.auth import mint_owner_token, owner_key
from console.services import grants
from console.services.grants import Target
from tests.gateway.conftest import Stack
from tests.support.approvals import held, owner
from tests.support.gateway import agent
from tests.support.rawmcp import ACCEPT, INIT

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]
TOOL = "time__get_current_time"


def asking(stack: Stack) -> tuple[str, str, str]:
    """An agent whose get_current_time calls wait for the owner: (name, id, token)."""
    name, token = stack.agent("local")
    grants.grant(stack.ws, name, Target.parse("local/time/get_current_time"), ask=True)
    stack.ws.refresh()
    return name, stack.ws.repos.agents.require(name).id, token


async def control(stack: Stack, method: str, path: str, token: str | None, body: Any = None) -> httpx2.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    content = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    async with httpx2.AsyncClient(timeout=10) as http:
        return await http.request(method, stack.url + path, headers=headers, content=content)


async def session(http: httpx2.AsyncClient, token: str) -> dict[str, str]:
    """A session of the agent, by hand: the headers of its requests."""
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json", "accept": ACCEPT}
    opened = await http.post("/mcp", json=INIT, headers=headers)
    headers["mcp-session-id"] = opened.headers["mcp-session-id"]
    await http.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
    return headers


def tool_call(number: int, timezone: str = "UTC") -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": number, "method": "tools/call",
            "params": {"name": TOOL, "arguments": {"timezone": timezone}}}


async def refused_call(call: Awaitable[Any]) -> str:
    with pytest.raises(MCPError) as err:
        await asyncio.wait_for(call, 20)
    return err.value.error.message


async def test_agent_tokens_cannot_list_or_decide_approvals_their_own_included(stack: Stack) -> None:
    name, agent_id, token = asking(stack)
    _other, _other_id, other_token = asking(stack)
    key = owner_key(stack.ws)
    acting_as = mint_owner_token(key, agent_id)  # the owner's token for acting as this agent (tbx call --as)
    forged = mint_control_token(b"k" * 32, "mallory")  # the right shape, another key
    expired = mint_control_token(key, "test", ttl=-10)
    async with agent(stack.url, token) as client:
        call = asyncio.ensure_future(client.call_tool(TOOL, {"timezone": "UTC"}))
        (pending,) = await held(stack, name)
        for credential in (token, other_token, acting_as, forged, expired, "tbx_" + "a" * 43, None):
            listed = await control(stack, "GET", "/approvals", credential)
            assert listed.status_code == 401, credential
            assert pending["id"] not in listed.text
            decided = await control(stack, "POST", f"/approvals/{pending['id']}", credential,
                                    {"decision": "allow", "sha256": pending["sha256"]})
            assert decided.status_code == 401
        assert not call.done()
        assert [p["id"] for p in (await held(stack, name))] == [pending["id"]]  # still waiting, undecided
        await asyncio.to_thread(owner(stack).decide, pending["id"], pending["sha256"], allow=False)
        assert "the owner denied the call" in await refused_call(call)


async def test_a_decision_for_other_arguments_is_refused_and_the_call_keeps_waiting(stack: Stack) -> None:
    name, _agent_id, token = asking(stack)
    the_owner = owner(stack)
    async with agent(stack.url, token) as client:
        first = asyncio.ensure_future(client.call_tool(TOOL, {"timezone": "UTC"}))
        (shown,) = await held(stack, name)
        # The agent sends the same call with other arguments: a call of its own, never the one shown.
        second = asyncio.ensure_future(client.call_tool(TOOL, {"timezone": "Europe/Paris"}))
        both = await held(stack, name, 2)
        (other,) = [p for p in both if p["id"] != shown["id"]]
        assert other["sha256"] != shown["sha256"] and other["arguments"] == {"timezone": "Europe/Paris"}
        for sha256 in (other["sha256"], "0" * 64, shown["sha256"].upper(), ""):
            response = await control(stack, "POST", f"/approvals/{shown['id']}", the_owner.token,
                                     {"decision": "allow", "sha256": sha256})
            assert response.status_code == 409, sha256
            assert "other arguments" in response.json()["error"]
        assert {p["id"] for p in await held(stack, name, 2)} == {shown["id"], other["id"]}
        assert not first.done()
        assert await asyncio.to_thread(the_owner.decide, shown["id"], shown["sha256"], allow=True) == "allowed"
        result = await asyncio.wait_for(first, 20)
        assert "UTC" in result.content[0].text  # type: ignore[union-attr]
        await asyncio.to_thread(the_owner.decide, other["id"], other["sha256"], allow=False)
        await refused_call(second)
    # Deciding a call that is gone is refused as such.
    gone = await control(stack, "POST", f"/approvals/{shown['id']}", the_owner.token,
                         {"decision": "allow", "sha256": shown["sha256"]})
    assert gone.status_code == 404


async def test_malformed_decisions_are_refused_and_change_nothing(stack: Stack) -> None:
    name, _agent_id, token = asking(stack)
    the_owner = owner(stack)
    async with agent(stack.url, token) as client:
        call = asyncio.ensure_future(client.call_tool(TOOL, {"timezone": "UTC"}))
        (pending,) = await held(stack, name)
        path, good = f"/approvals/{pending['id']}", pending["sha256"]
        bodies: list[tuple[Any, int]] = [
            (b"{not json", 400), (b"x" * 10_000, 400), ([1, 2], 400), ({"decision": "maybe", "sha256": good}, 400),
            ({"decision": "allow", "sha256": 7}, 400), ({"decision": "allow", "sha256": good, "minutes": "10"}, 400),
            ({"decision": "allow", "sha256": good, "minutes": -5}, 400),
            ({"decision": "allow", "sha256": good, "minutes": True}, 400),
            ({"decision": "deny", "sha256": good, "minutes": 5}, 400),
            ({"decision": "allow", "sha256": good, "always": True}, 400),
        ]
        for body, status in bodies:
            response = await control(stack, "POST", path, the_owner.token, body)
            assert response.status_code == status, (body, response.text)
        assert (await control(stack, "POST", "/approvals/apr_nobody", the_owner.token,
                              {"decision": "allow", "sha256": good})).status_code == 404
        assert (await control(stack, "DELETE", path, the_owner.token)).status_code == 405
        assert (await control(stack, "GET", "/approvals?since=x&wait=nan", the_owner.token)).status_code == 200
        assert [p["id"] for p in await held(stack, name)] == [pending["id"]] and not call.done()
        await asyncio.to_thread(the_owner.decide, pending["id"], good, allow=True)
        await asyncio.wait_for(call, 20)


async def test_an_agent_cannot_hold_more_calls_than_it_may_have_in_flight(stack: Stack) -> None:
    name, _agent_id, token = asking(stack)
    async with httpx2.AsyncClient(timeout=30, base_url=stack.url) as http:
        headers = await session(http, token)
        flood = [asyncio.ensure_future(http.post("/mcp", headers=headers, json=tool_call(n))) for n in range(10)]
        pending = await held(stack, name, 4)  # max_inflight_per_agent = 4 in this package
        await asyncio.sleep(0.3)
        over = [task.result() for task in flood if task.done()]
        assert len(over) == 6 and all(response.status_code == 429 for response in over)
        assert len((await asyncio.to_thread(owner(stack).pending))[1]) >= 4
        started = time.monotonic()
        for call_held in pending:
            await asyncio.to_thread(owner(stack).decide, call_held["id"], call_held["sha256"], allow=False)
        answers = await asyncio.gather(*flood)
        assert time.monotonic() - started < 10
        assert sum("the owner denied the call" in r.text for r in answers) == 4


async def test_only_the_calling_session_cancels_a_held_call_and_it_is_never_forwarded(stack: Stack) -> None:
    name, _agent_id, token = asking(stack)
    _thief, _thief_id, thief_token = asking(stack)
    async with httpx2.AsyncClient(timeout=30, base_url=stack.url) as http:
        mine, theirs = await session(http, token), await session(http, thief_token)
        call = asyncio.ensure_future(http.post("/mcp", headers=mine, json=tool_call(7)))
        (pending,) = await held(stack, name)
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}
        assert (await http.post("/mcp", headers=theirs, json=cancel)).status_code == 202  # its own id 7: nothing
        stolen = {**theirs, "mcp-session-id": mine["mcp-session-id"]}
        assert (await http.post("/mcp", headers=stolen, json=cancel)).status_code == 404  # another's session
        assert [p["id"] for p in await held(stack, name)] == [pending["id"]] and not call.done()
        assert (await http.post("/mcp", headers=mine, json=cancel)).status_code == 202
        answer = await asyncio.wait_for(call, 10)
        assert "the agent cancelled the call" in answer.text
        assert (await asyncio.to_thread(owner(stack).pending))[1] == [] or all(
            p["agent"] != name for p in (await asyncio.to_thread(owner(stack).pending))[1])
    late = await control(stack, "POST", f"/approvals/{pending['id']}", owner(stack).token,
                         {"decision": "allow", "sha256": pending["sha256"]})
    assert late.status_code == 404  # the owner's allow comes too late to send it
    stack.gateway.flush_audit()
    (called,) = [r for r in stack.ws.audit.records() if r.get("agent") == name and r["action"] == "tool.call"]
    assert called["detail"]["reason"] == "approval-cancelled" and "result_bytes" not in called["detail"]
