"""MCP 2026-07-28 on the same endpoints: the SDK Client pinned to the stateless era as the
agent, through /mcp and /servers/NAME/mcp, against the real server-everything in a
container (which speaks the handshake era: the gateway bridges them). Access, masking
and audit are the handshake era's, request by request."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from mcp import MCPError

from tests.gateway.conftest import Stack, _stack
from tests.gateway.test_agent_asks import SAMPLE, SERVER_EP, allowed, sampler, tbx
from tests.gateway.test_agent_asks import records as _records
from tests.support.asking import asking_agent
from tests.support.gateway import agent, eventually
from tests.support.rawmcp import stateless
from tests.support.sharedkeys import shared_keyring_home

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]
NEW = "2026-07-28"
TOGGLE = "toggle-subscriber-updates"
DOC = "demo://resource/static/document/architecture.md"
GRANTS = ("local", "local/everything/echo", "local/everything/get-sum", f"local/everything/resource:{DOC}",
          "local/everything/prompt:simple-prompt")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> Iterator[Stack]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("era2026")
    with shared_keyring_home(root):
        yield from _stack(root, ("everything",))


def records(stack: Stack, name: str) -> list[dict]:
    stack.gateway.flush_audit()
    return [r for r in stack.ws.audit.records() if r.get("agent") == name and r["actor"].startswith("agent:")]


@pytest.mark.parametrize(("endpoint", "prefix"), [("/mcp", "everything__"), ("/servers/everything/mcp", "")])
async def test_a_new_era_agent_uses_what_it_is_granted(stack: Stack, endpoint: str, prefix: str) -> None:
    """Discover, list, call, read, get a prompt; everything else is refused as in the
    handshake era; no request opens a session; each leaves one audit record."""
    name, token = stack.agent(*GRANTS)
    async with agent(stack.url, token, endpoint, mode="auto") as client:
        assert client.protocol_version == NEW  # the Client discovered the era and chose it
        assert client.server_info is not None and client.server_info.name == "toolbox-console"
        tools = await client.list_tools(cache_mode="bypass")
        assert sorted(t.name for t in tools.tools) == [f"{prefix}echo", f"{prefix}get-sum"]
        assert tools.cache_scope == "private" and tools.ttl_ms > 0
        echoed = await client.call_tool(f"{prefix}echo", {"message": "new era"})
        assert echoed.is_error is False and "new era" in echoed.content[0].text
        assert echoed.result_type == "complete"
        assert [r.uri for r in (await client.list_resources(cache_mode="bypass")).resources] == [DOC]
        read = await client.read_resource(DOC, cache_mode="bypass")
        assert read.contents and read.cache_scope == "private"
        prompt = await client.get_prompt(f"{prefix}simple-prompt")
        assert prompt.messages
        with pytest.raises(MCPError, match="not granted"):
            await client.call_tool(f"{prefix}get-env", {})
        with pytest.raises(MCPError):
            await client.read_resource("demo://resource/static/document/extension.md", cache_mode="bypass")
    assert stack.gateway.call(lambda gw: [s for s in gw.sessions if gw.pipeline._agent_name(s.agent_id) == name]) == []
    mine = records(stack, name)
    assert [r["action"] for r in mine] == ["server.discover", "tools.list", "tool.call", "resources.list",
                                           "resource.read", "prompt.get", "tool.call", "resource.read"]
    assert all(r["detail"]["protocol"] == NEW and r["detail"]["endpoint"] == ("everything" if prefix == "" else "/mcp")
               for r in mine)
    assert [r["decision"] for r in mine][-2:] == ["deny", "deny"]


async def test_a_pinned_client_needs_no_discover_and_old_clients_are_unchanged(stack: Stack) -> None:
    """The Client pinned to 2026-07-28 sends straight away; the handshake-era Client still
    gets a session and its own version, side by side with it on the same endpoint."""
    _name, token = stack.agent("local", "local/everything/echo")
    async with agent(stack.url, token, mode=NEW) as new, agent(stack.url, token) as old:
        assert (await new.call_tool("everything__echo", {"message": "a"})).content[0].text.endswith("a")
        assert (await old.call_tool("everything__echo", {"message": "b"})).content[0].text.endswith("b")
        assert old.protocol_version == "2025-11-25"
        assert [t.name for t in (await old.list_tools()).tools] == ["everything__echo"]


def test_the_stateless_era_is_masked_like_the_other(stack: Stack) -> None:
    """A server that leaks its secret: the 2026-07-28 reply is masked like a session's."""
    secret = "era-secret-Qx81-Zt77-kk"
    stack.add_shapeshifter("leaky26", [{"name": "leak", "description": "Leaks.", "inputSchema": {"type": "object"}}],
                           secrets={"LEAK_VALUE": secret})
    _name, token = stack.agent("local", "local/leaky26")
    reply = stateless(stack.url + "/servers/leaky26/mcp", token, "tools/call", {"name": "leak", "arguments": {}})
    assert reply.status_code == 200, reply.text
    assert secret not in reply.text and "LEAK_VALUE›" in reply.text
    assert reply.json()["result"]["resultType"] == "complete"



async def test_listen_streams_list_changes_and_updates_of_granted_resources(stack: Stack) -> None:
    """subscriptions/listen: the acknowledgement honors only the URIs the agent may read;
    a grant made while it listens arrives as tools/list_changed; server-everything's
    updates of the subscribed URI arrive tagged with the subscription; hanging up ends
    the stream's session and lets the server's subscription go."""
    from console.services import grants
    from console.services.grants import Target
    from mcp.client.subscriptions import ResourceUpdated, ToolsListChanged

    name, token = stack.agent(*GRANTS)
    forbidden = "demo://resource/static/document/extension.md"
    events: list[object] = []
    async with (agent(stack.url, token, mode=NEW) as client,
                client.listen(tools_list_changed=True, resource_subscriptions=[DOC, forbidden]) as sub):
        assert sub.honored.tools_list_changed is True and sub.honored.resource_subscriptions == [DOC]
        assert not sub.honored.prompts_list_changed
        grants.grant(stack.ws, name, Target.parse(f"local/everything/{TOGGLE}"))
        await client.call_tool(f"everything__{TOGGLE}", {})
        try:
            async with asyncio.timeout(15):
                async for event in sub:
                    events.append(event)
                    if {type(e) for e in events} >= {ToolsListChanged, ResourceUpdated}:
                        break
        finally:
            await client.call_tool(f"everything__{TOGGLE}", {})
    assert ToolsListChanged() in events and ResourceUpdated(DOC) in events
    assert ResourceUpdated(forbidden) not in events

    def subscribed(gw) -> int:  # noqa: ANN001
        return gw.relay.subscribed(gw.snapshot.surface.server_ids["everything"], DOC)

    await eventually(lambda: _async(stack.gateway.call(subscribed) == 0), 5)
    [record] = [r for r in records(stack, name) if r["action"] == "subscriptions.listen"]
    assert record["detail"]["subscribed"] == 1 and record["detail"]["refused"] == 1


async def _async(value: object) -> object:
    return value


@pytest.fixture(scope="module")
def sampling(stack: Stack) -> None:
    """The owner lets server-everything ask agents for sampling (it restarts: these tests run last)."""
    out = tbx(stack, "server", "allow", "local/everything", "sampling")
    assert out.exit_code == 0, out.output
    _name, token = stack.agent("local", "local/everything")
    asyncio.run(allowed(stack, token, SAMPLE))


async def test_a_server_request_reaches_a_new_era_agent_as_input_required(stack: Stack, sampling: None) -> None:
    """server-everything asks for sampling during a 2026-07-28 call: the agent gets an
    input-required result, its SDK client samples and retries with the answer and the
    requestState, and the retry's reply is the call's result, through both endpoints."""
    name, token = stack.agent("local", "local/everything")
    seen: list[str] = []
    for endpoint, prefix in (("/mcp", "everything__"), (SERVER_EP, "")):
        async with agent(stack.url, token, endpoint, mode=NEW, sampling_callback=sampler(seen, "sampled!")) as client:
            result = await client.call_tool(f"{prefix}{SAMPLE}", {"prompt": f"via {endpoint}", "maxTokens": 5})
        assert not result.is_error and "sampled!" in str(result.content), result
    assert seen == [f"Resource trigger-sampling-request context: via {ep}" for ep in ("/mcp", SERVER_EP)]
    calls = [r for r in records(stack, name) if r["action"] == "tool.call"]
    assert [r["detail"].get("input_required") for r in calls] == [["sampling/createMessage"], None] * 2
    assert [r["detail"].get("resumed") for r in calls] == [None, True] * 2


async def test_a_server_request_during_a_stateless_call_goes_to_nobody_else(stack: Stack, sampling: None) -> None:
    """A stateless call counts as a call in flight where a server's request is matched to
    its call: otherwise the one handshake-era call also in flight would be "the server's
    only call" and its agent would be shown the other agent's prompt."""
    name_a, token_a = stack.agent("local", "local/everything")
    name_b, token_b = stack.agent("local", "local/everything")
    seen_a: list[str] = []
    gate = asyncio.Event()
    async with (asking_agent(stack.url, token_a, SERVER_EP, sampling_callback=sampler(seen_a, "for a", gate)) as a,
                agent(stack.url, token_b, mode=NEW) as b):
        first = asyncio.ensure_future(a.call_tool(SAMPLE, {"prompt": "secret of a"}))
        await eventually(lambda: _async(bool(seen_a)), 10)
        second = asyncio.ensure_future(b.call_tool(f"everything__{SAMPLE}", {"prompt": "secret of b"}))
        done, _ = await asyncio.wait({second}, timeout=10)
        gate.set()
        assert second in done, "the stateless call waited on another agent's answer"
        await first
    assert seen_a == ["Resource trigger-sampling-request context: secret of a"]
    assert second.result().is_error
    outcomes = {(r["agent"], r["detail"]["outcome"]) for r in _records(stack, "server.sampling")}
    assert (name_a, "answered") in outcomes and not any(agent == name_b and outcome == "answered"
                                                        for agent, outcome in outcomes)
