"""Sampling, elicitation and roots from a server reach the agent whose call caused them,
when the owner allowed them (issue 17, item 2). The real server-everything in a container,
the mcp SDK Client as the agent with its own callbacks, through both endpoints; the
switches flipped with the real CLI."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from typing import Any

import mcp_types as types
import pytest
from click.testing import CliRunner
from mcp import Client

from console.cli import cli
from console.services.tools import approve
from tests.gateway.conftest import Stack, _stack
from tests.support.asking import asking_agent
from tests.support.gateway import eventually
from tests.support.sharedkeys import shared_keyring_home

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]
SERVER_EP = "/servers/everything/mcp"
SAMPLE, ELICIT, ROOTS = "trigger-sampling-request", "trigger-elicitation-request", "get-roots-list"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> Iterator[Stack]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("asks")
    with shared_keyring_home(root):
        yield from _stack(root, ("everything",))


def tbx(stack: Stack, *args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env={**os.environ, "TBX_HOME": str(stack.paths.data_dir)})


def sampler(seen: list[str], reply: str, gate: asyncio.Event | None = None):  # noqa: ANN201
    async def sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        seen.append(params.messages[0].content.text)  # type: ignore[union-attr]
        if gate is not None:
            await gate.wait()
        return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text=reply),
                                         model="test-model", stop_reason="endTurn")
    return sampling


def records(stack: Stack, action: str) -> list[dict]:
    stack.gateway.flush_audit()
    return [r for r in stack.ws.audit.records() if r["action"] == action]


async def names(client: Client) -> set[str]:
    return {tool.name for tool in (await client.list_tools(cache_mode="bypass")).tools}


def text(result: types.CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


async def allowed(stack: Stack, token: str, *tools: str) -> None:
    """The restarted server's new tools, approved, reach the agent's listing."""
    async def listed() -> bool:
        approve(stack.ws, "local", "everything")
        async with asking_agent(stack.url, token, SERVER_EP) as probe:
            return set(tools) <= await names(probe)
    await eventually(listed, 60, step=1.0)


@pytest.fixture(scope="module")
def switched_on(stack: Stack) -> str:
    """All three switches on (the CLI, one of them with --json); a token of an agent with
    the whole server, kept for the tests that need it."""
    _name, token = stack.agent("local", "local/everything")
    before = asyncio.run(_listed(stack, token))
    assert not {SAMPLE, ELICIT, ROOTS} & before  # off by default: the session declares none
    out = tbx(stack, "server", "allow", "local/everything", "sampling", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == {"server": "local/everything", "kind": "sampling", "allowed": True,
                                      "changed": True, "may_ask": ["sampling"], "restarted": True}
    for kind in ("elicitation", "roots"):
        out = tbx(stack, "server", "allow", "local/everything", kind)
        assert out.exit_code == 0 and "may now ask agents for" in out.output, out.output
    again = tbx(stack, "server", "allow", "local/everything", "roots")
    assert "already allowed" in again.output
    asyncio.run(allowed(stack, token, SAMPLE, ELICIT, ROOTS))
    # The SDK declares form and URL elicitation alike: server-everything adds its URL tool too.
    assert asyncio.run(_listed(stack, token)) - before == {SAMPLE, ELICIT, ROOTS, "trigger-url-elicitation"}
    return token


async def _listed(stack: Stack, token: str) -> set[str]:
    async with asking_agent(stack.url, token, SERVER_EP) as probe:
        return await names(probe)


async def test_each_kind_reaches_the_calling_agent_through_both_endpoints(stack: Stack, switched_on: str) -> None:
    name, token = stack.agent("local", "local/everything")
    prompts: list[str] = []

    async def elicitation(context: Any, params: Any) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"name": "Ada Lovelace", "check": True})

    async def roots(context: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri="file:///work/notes", name="notes")])

    callbacks = {"sampling_callback": sampler(prompts, "forty-two"), "elicitation_callback": elicitation,
                 "list_roots_callback": roots}
    async with (asking_agent(stack.url, token, **callbacks) as aggregate,
                asking_agent(stack.url, token, SERVER_EP, **callbacks) as direct):
        sampled = await aggregate.call_tool(f"everything__{SAMPLE}", {"prompt": "the answer?", "maxTokens": 5})
        assert not sampled.is_error and "forty-two" in text(sampled) and "test-model" in text(sampled)
        sampled = await direct.call_tool(SAMPLE, {"prompt": "and again?"})
        assert "forty-two" in text(sampled)
        elicited = await direct.call_tool(ELICIT, {})
        assert "Name: Ada Lovelace" in text(elicited)
        listed = await aggregate.call_tool(f"everything__{ROOTS}", {})
        assert "file:///work/notes" in text(listed)
    assert [p.rsplit(": ", 1)[-1] for p in prompts] == ["the answer?", "and again?"]
    mine = [r for r in records(stack, "server.sampling") if r["agent"] == name]
    assert [(r["decision"], r["detail"]["outcome"]) for r in mine] == [("allow", "answered")] * 2
    assert mine[0]["actor"] == "server:local/everything"
    [elicit] = [r for r in records(stack, "server.elicitation") if r["agent"] == name]
    assert elicit["detail"]["action"] == "accept" and "Ada" not in json.dumps(elicit)  # what the agent said stays out
    assert [r["decision"] for r in records(stack, "server.roots") if r["agent"] == name] == ["allow"]


async def test_an_agent_that_did_not_declare_the_capability_is_not_asked(stack: Stack, switched_on: str) -> None:
    name, token = stack.agent("local", "local/everything")
    async with asking_agent(stack.url, token, SERVER_EP) as plain:
        result = await plain.call_tool(SAMPLE, {"prompt": "anyone?"})
    assert result.is_error and "did not declare the sampling capability" in text(result)
    [record] = [r for r in records(stack, "server.sampling") if r["agent"] == name]
    assert record["decision"] == "deny" and record["detail"]["outcome"] == "not-declared"


async def test_with_two_calls_in_flight_neither_agent_gets_the_others_request(stack: Stack, switched_on: str) -> None:
    """The server's one session carries both calls and its request says nothing of whose it
    is: the first, alone in flight, goes to its agent; the second, while both are in flight,
    goes to nobody (a guess could show one agent the other's prompt)."""
    name_a, token_a = stack.agent("local", "local/everything")
    name_b, token_b = stack.agent("local", "local/everything")
    seen_a: list[str] = []
    seen_b: list[str] = []
    gate = asyncio.Event()
    async with (asking_agent(stack.url, token_a, SERVER_EP, sampling_callback=sampler(seen_a, "for a", gate)) as a,
                asking_agent(stack.url, token_b, sampling_callback=sampler(seen_b, "for b")) as b):
        first = asyncio.ensure_future(a.call_tool(SAMPLE, {"prompt": "secret of a"}))

        async def a_asked() -> bool:
            return bool(seen_a)
        await eventually(a_asked, 10)
        second = await b.call_tool(f"everything__{SAMPLE}", {"prompt": "secret of b"})
        gate.set()
        first_result = await first
    assert "for a" in text(first_result) and seen_a == ["Resource trigger-sampling-request context: secret of a"]
    assert second.is_error and seen_b == []
    outcomes = {(r["agent"], r["detail"]["outcome"]) for r in records(stack, "server.sampling")}
    assert (name_a, "answered") in outcomes and (None, "unattributed") in outcomes
    assert not any(agent == name_b for agent, _ in outcomes)


async def test_denied_again_the_server_no_longer_offers_it_and_the_change_is_audited(
        stack: Stack, switched_on: str) -> None:
    out = await asyncio.to_thread(tbx, stack, "server", "deny", "local/everything", "sampling")
    assert out.exit_code == 0 and "may no longer ask agents for sampling" in out.output, out.output

    async def gone() -> bool:
        return SAMPLE not in await _listed(stack, switched_on)
    await eventually(gone, 60, step=1.0)
    assert ELICIT in await _listed(stack, switched_on)
    changes = [(r["action"], r["detail"]["kind"]) for r in stack.ws.audit.records()
               if r["action"] in ("server.allow", "server.deny")]
    assert changes == [("server.allow", "sampling"), ("server.allow", "elicitation"), ("server.allow", "roots"),
                       ("server.deny", "sampling")]
    listed = await asyncio.to_thread(tbx, stack, "server", "list", "--json")
    [status] = json.loads(listed.output)
    assert status["may_ask"] == ["elicitation", "roots"] and status["health"] == "healthy"
    assert ELICIT in await _listed(stack, switched_on)  # the ping's session declared them too


async def test_the_gateway_makes_the_session_again_when_the_switch_moves_under_it(
        stack: Stack, switched_on: str) -> None:
    """A change the gateway reads from the vault before the server restarts (or without a
    restart: another console's write) still gets a session that declares it."""
    box = stack.ws.repos.toolboxes.require("local")
    server = stack.ws.repos.servers.by_name(box.id, "everything")
    assert server is not None
    with stack.ws.change() as change:
        server.may_ask = ["elicitation"]
        change.repos.servers.put(server)

    def declared() -> frozenset[str] | None:
        upstream = stack.gateway.call(lambda g: g.upstreams.live(server.id))
        return upstream.session.asks if upstream is not None else None

    async def made_again() -> bool:
        return declared() == frozenset({"elicitation"})
    await eventually(made_again, 30, step=0.2)
