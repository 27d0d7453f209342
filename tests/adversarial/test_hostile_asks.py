"""Server-to-client requests used against the others: an agent answering a request made of
another agent (or of its own other session), answering twice, malformed, invalid or
oversized answers; a server asking with no call in flight, asking for what its owner did
not allow, or flooding requests (issue 17, item 2)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import mcp_types as types
import pytest

from console.services.server_asks import set_may_ask
from console.services.server_status import call_tool
from tests.adversarial.test_request_checks import server_log, tool
from tests.gateway.conftest import RESULT_CAP, Stack
from tests.support.asking import asking_agent
from tests.support.gateway import eventually
from tests.support.rawmcp import ACCEPT, INIT

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]


def sampling(request_id: str, text: str = "what now?") -> dict:
    return {"jsonrpc": "2.0", "id": request_id, "method": "sampling/createMessage", "params": {
        "messages": [{"role": "user", "content": {"type": "text", "text": text}}], "maxTokens": 10,
        "_meta": {"server-secret": "for the gateway only"}}}


def answer(request_id: str, text: str = "ok") -> dict:
    return {"jsonrpc": "2.0", "id": request_id,
            "result": {"role": "assistant", "content": {"type": "text", "text": text}, "model": "m"}}


def shapeshifter(stack: Stack, name: str, *allowed: str) -> str:
    stack.add_shapeshifter(name, [tool("say")])
    for kind in allowed:
        set_may_ask(stack.ws, f"local/{name}", kind, True)  # type: ignore[arg-type]
    return name


@pytest.fixture(scope="module")
def asker(stack: Stack) -> str:
    return shapeshifter(stack, "asker", "sampling")


def asks(stack: Stack, server: str, kind: str = "sampling") -> list[dict]:
    stack.gateway.flush_audit()
    return [r for r in stack.ws.audit.records()
            if r["action"] == f"server.{kind}" and r["target"] == f"server:local/{server}"]


class Raw:
    """A hand-written agent session (the SDK would never misbehave)."""

    def __init__(self, http: httpx2.AsyncClient, url: str, token: str) -> None:
        self.http, self.url, self.token = http, url, token
        self.session = ""

    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}", "content-type": "application/json", "accept": ACCEPT,
                "mcp-session-id": self.session}

    async def initialize(self, capabilities: dict[str, Any]) -> Raw:
        body = json.loads(json.dumps(INIT))
        body["params"]["capabilities"] = capabilities
        response = await self.http.post(self.url, json=body, headers={**self.headers(), "mcp-session-id": ""})
        self.session = response.headers["mcp-session-id"]
        return self

    async def post(self, body: dict | bytes) -> httpx2.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.http.post(self.url, content=content, headers=self.headers())

    def stream(self, server: str, lines: list[dict], wait: float, meta: dict | None = None) -> Any:
        body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                "params": {"name": f"{server}__say", "arguments": {"lines": lines, "wait": wait}, **(
                    {"_meta": meta} if meta else {})}}
        return self.http.stream("POST", self.url, content=json.dumps(body).encode(), headers=self.headers())


async def messages(response: Any) -> AsyncIterator[dict]:
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            yield json.loads(line[len("data: "):])


async def test_only_the_session_asked_may_answer_and_only_once(stack: Stack, asker: str) -> None:
    name, token = stack.agent("local", f"local/{asker}")
    _other, other_token = stack.agent("local", f"local/{asker}")
    url = stack.url + "/mcp"
    async with httpx2.AsyncClient(timeout=15) as http:
        mine = await Raw(http, url, token).initialize({"sampling": {}})
        my_other_session = await Raw(http, url, token).initialize({"sampling": {}})
        stranger = await Raw(http, url, other_token).initialize({"sampling": {}})
        async with mine.stream(asker, [sampling("s-1")], wait=2.0) as response:
            assert response.headers["content-type"] == "text/event-stream"
            seen = messages(response)
            request = await anext(seen)
            assert request["method"] == "sampling/createMessage" and request["id"].startswith("tbxa-")
            assert "_meta" not in request["params"]  # the server's _meta is not the agent's business
            rid = request["id"]
            for intruder in (stranger, my_other_session):
                refused = await intruder.post(answer(rid, "forged"))
                assert refused.status_code == 400 and "no request of this session" in refused.text
            both = {**answer(rid), "error": {"code": 1, "message": "x"}}
            assert (await mine.post(both)).status_code == 400
            assert (await mine.post(answer(rid, "the real one"))).status_code == 202
            again = await mine.post(answer(rid, "again"))
            assert again.status_code == 400 and "no request of this session" in again.text
            final = [m async for m in seen]
    assert final[-1]["id"] == 7 and final[-1]["result"]["content"][0]["text"] == "said"
    assert server_log(stack, asker).count("answered s-1") == 1
    [record] = [r for r in asks(stack, asker) if r["agent"] == name]
    assert record["decision"] == "allow" and record["detail"]["outcome"] == "answered"
    assert "the real one" not in json.dumps(record)


async def test_calls_in_flight_at_once_each_get_their_own_when_the_request_says_whose(
        stack: Stack, asker: str) -> None:
    """A server that puts the call's progress token in its request's _meta says whose it
    is: two agents' calls in flight at once (both using the same token of their own) each
    get only their own request; one naming no call in flight goes to nobody."""
    names = {}
    async with httpx2.AsyncClient(timeout=15) as http:
        sessions = []
        for who in ("a", "b"):
            name, token = stack.agent("local", f"local/{asker}")
            names[who] = name
            sessions.append(await Raw(http, stack.url + "/mcp", token).initialize({"sampling": {}}))

        async def ask_and_answer(raw: Raw, who: str) -> tuple[str, str]:
            forged = {**sampling(f"{who}-x", "guessed"), "params": {**sampling("", "guessed")["params"],
                                                                   "_meta": {"progressToken": "tbxp-0-1"}}}
            own = {**sampling(f"{who}-1", f"for {who}"),
                   "params": {**sampling("", f"for {who}")["params"], "_meta": {"progressToken": "$TOKEN"}}}
            async with raw.stream(asker, [own, forged], wait=1.5, meta={"progressToken": "same"}) as response:
                seen = messages(response)
                request = await anext(seen)
                assert (await raw.post(answer(request["id"], f"answer of {who}"))).status_code == 202
                rest = [m async for m in seen]
            assert [m.get("id") for m in rest] == [7]  # the forged one never came
            return request["params"]["messages"][0]["content"]["text"], rest[-1]["result"]["content"][0]["text"]

        got = await asyncio.gather(ask_and_answer(sessions[0], "a"), ask_and_answer(sessions[1], "b"))
    assert got == [("for a", "said"), ("for b", "said")]
    records = asks(stack, asker)
    assert {(r["agent"], r["detail"]["outcome"]) for r in records if r["agent"] in names.values()} == {
        (names["a"], "answered"), (names["b"], "answered")}
    assert sum(1 for r in records[-4:] if r["agent"] is None and r["detail"]["outcome"] == "unattributed") == 2


async def test_invalid_and_oversized_answers_do_not_reach_the_server(stack: Stack, asker: str) -> None:
    name, token = stack.agent("local", f"local/{asker}")
    async with httpx2.AsyncClient(timeout=15) as http:
        mine = await Raw(http, stack.url + "/mcp", token).initialize({"sampling": {}})
        async with mine.stream(asker, [sampling("s-2"), sampling("s-3"), sampling("s-5")], wait=2.0) as response:
            seen = messages(response)
            first, second, third = await anext(seen), await anext(seen), await anext(seen)
            invalid = {"jsonrpc": "2.0", "id": first["id"], "result": {"role": "assistant"}}
            assert (await mine.post(invalid)).status_code == 202
            # A tool call the server never offered tools for (valid only with tools).
            unoffered = {"jsonrpc": "2.0", "id": third["id"], "result": {
                "role": "assistant", "model": "m", "stopReason": "toolUse",
                "content": [{"type": "tool_use", "id": "t1", "name": "rm", "input": {"path": "/"}}]}}
            assert (await mine.post(unoffered)).status_code == 202
            huge = await mine.post(answer(second["id"], "x" * (RESULT_CAP + 1)))
            assert huge.status_code == 400 and f"over {RESULT_CAP} bytes" in huge.text
            [m async for m in seen]
    outcomes = sorted(r["detail"]["outcome"] for r in asks(stack, asker) if r["agent"] == name)
    assert outcomes == ["agent-error", "invalid-answer", "invalid-answer"]
    log = server_log(stack, asker)
    assert "answered s-2" in log and "answered s-3" in log and "answered s-5" in log  # as errors: the server is not left waiting
    assert "x" * 1000 not in log


async def test_a_request_with_no_call_in_flight_goes_to_nobody(stack: Stack, asker: str) -> None:
    """The owner's own call (tbx call) shares the server's stdout with the gateway's
    session: the request it provokes reaches the gateway with none of its calls in flight."""
    name, token = stack.agent("local", f"local/{asker}")
    before = len(asks(stack, asker))
    heard: list[Any] = []

    async def sampling_callback(context: Any, params: Any) -> Any:
        heard.append(params)
        return types.ErrorData(code=1, message="should never be asked")

    async with asking_agent(stack.url, token, sampling_callback=sampling_callback) as idle:
        await asyncio.to_thread(call_tool, stack.ws, f"local/{asker}/say", {"lines": [sampling("s-4")]})

        async def recorded() -> bool:
            return len(asks(stack, asker)) > before
        await eventually(recorded, 10)
        assert await idle.list_tools() is not None
    [record] = asks(stack, asker)[before:]
    assert record["decision"] == "deny" and record["detail"]["outcome"] == "unattributed"
    assert record["agent"] is None and heard == []
    assert not [r for r in asks(stack, asker) if r["agent"] == name]


async def test_what_the_owner_did_not_allow_never_reaches_an_agent(stack: Stack, asker: str) -> None:
    """``asker`` may ask for sampling only: its elicitation and roots requests are refused
    upstream by the session (it never declared them) and recorded, while an agent that
    declared both waits on its call's stream."""
    name, token = stack.agent("local", f"local/{asker}")
    elicit = {"jsonrpc": "2.0", "id": "e-1", "method": "elicitation/create",
              "params": {"message": "your password?", "requestedSchema": {"type": "object", "properties": {}}}}
    roots = {"jsonrpc": "2.0", "id": "r-1", "method": "roots/list"}
    async with httpx2.AsyncClient(timeout=15) as http:
        mine = await Raw(http, stack.url + "/mcp", token).initialize({"elicitation": {}, "roots": {}})
        async with mine.stream(asker, [elicit, roots], wait=0.5) as response:
            # Nothing was streamed to the agent: its call is answered with plain JSON.
            assert response.headers["content-type"] == "application/json"
            assert json.loads(await response.aread())["result"]["content"][0]["text"] == "said"
    for kind in ("elicitation", "roots"):
        [record] = asks(stack, asker, kind)[-1:]
        assert record["decision"] == "deny" and record["detail"]["outcome"] == "not-allowed"
    log = server_log(stack, asker)
    assert "answered e-1" in log and "answered r-1" in log


@pytest.fixture(scope="module")
def flooder(stack: Stack) -> str:
    return shapeshifter(stack, "flooder", "sampling")  # its own audit budget for the minute


async def test_a_flooding_server_is_held_to_a_few_waiting_requests_and_a_bounded_audit(
        stack: Stack, flooder: str) -> None:
    _name, token = stack.agent("local", f"local/{flooder}")
    active = [0, 0]  # now, most at once

    async def sampling_callback(context: Any, params: Any) -> types.CreateMessageResult:
        active[0] += 1
        active[1] = max(active)
        await asyncio.sleep(0.3)
        active[0] -= 1
        return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text="ok"),
                                         model="m")

    lines = [sampling(f"f-{n}") for n in range(100)]
    async with asking_agent(stack.url, token, sampling_callback=sampling_callback) as client:
        result = await client.call_tool(f"{flooder}__say", {"lines": lines, "wait": 2.0})
    assert not result.is_error
    limit = stack.gateway.call(lambda g: (g.asks.per_server, g.asks.records_per_minute))
    assert active[1] <= limit[0]
    records = asks(stack, flooder)
    assert len(records) == limit[1]  # the rest of the minute is counted, not recorded
    assert any(r["detail"]["outcome"] == "too-many" for r in records)

    def counted() -> int:
        stack.gateway.flush_audit()
        return sum(n for r in stack.ws.audit.records() if r["action"] == "server.asks.counted"
                   for key, n in r["detail"]["counts"].items() if key.startswith("sampling."))

    async def all_accounted() -> bool:
        return len(records) + counted() == len(lines)
    await eventually(all_accounted, 10)
