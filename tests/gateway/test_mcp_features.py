"""The MCP features beyond tools pass through the gateway (2025-11-25): progress, logging,
subscriptions, completions, cancellation. Real agents (the mcp SDK Client over Streamable
HTTP) against the real server-everything in a container, several agents at once, as
they share its one upstream session."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import mcp_types as types
import pytest

from console.gateway.relay import severity
from tests.gateway.conftest import Stack, _stack
from tests.support.gateway import agent, eventually
from tests.support.rawmcp import RawAgent, text_of
from tests.support.sharedkeys import shared_keyring_home

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]
LONG = "trigger-long-running-operation"
SERVER_EP = "/servers/everything/mcp"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> Iterator[Stack]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("features")
    with shared_keyring_home(root):
        yield from _stack(root, ("everything",))


def records(stack: Stack, name: str, action: str) -> list[dict]:
    stack.gateway.flush_audit()
    return [r for r in stack.ws.audit.records() if r.get("agent") == name and r["action"] == action]


async def test_progress_reaches_the_caller_and_only_it(stack: Stack) -> None:
    """Two agents' calls run at once over the server's one session, each with progress (the
    SDK numbers both tokens alike); each sees its own four steps, on both endpoints."""
    name_a, a_token = stack.agent("local", f"local/everything/{LONG}")
    _b, b_token = stack.agent("local", f"local/everything/{LONG}")
    seen: dict[str, list[tuple[float, float | None]]] = {"a": [], "b": []}

    def into(key: str):  # noqa: ANN202
        async def callback(progress: float, total: float | None, message: str | None) -> None:
            seen[key].append((progress, total))
        return callback

    async with agent(stack.url, a_token) as a, agent(stack.url, b_token, SERVER_EP) as b:
        results = await asyncio.gather(
            a.call_tool(f"everything__{LONG}", {"duration": 1, "steps": 4}, progress_callback=into("a")),
            b.call_tool(LONG, {"duration": 2, "steps": 3}, progress_callback=into("b")))
    assert [r.is_error for r in results] == [False, False]
    assert seen["a"] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert seen["b"] == [(1, 3), (2, 3), (3, 3)]
    [record] = records(stack, name_a, "tool.call")
    assert record["decision"] == "allow" and record["detail"]["progress"] is True


def test_a_call_streams_only_when_there_is_progress_to_stream(stack: Stack) -> None:
    """With a progress token the POST answers as an event stream (progress, then the result,
    under the agent's own token and id); without one, plain JSON."""
    _name, token = stack.agent("local", f"local/everything/{LONG}")
    arguments = {"duration": 0.4, "steps": 2}
    with RawAgent(stack.url, token, SERVER_EP) as raw:
        raw.initialize()
        plain = raw.call(LONG, arguments)
        assert "completed" in text_of(plain)
        streamed = raw.request("tools/call", {"name": LONG, "arguments": arguments,
                                              "_meta": {"progressToken": "mine-1"}}, request_id="call-9")
        assert streamed.headers["content-type"] == "text/event-stream"
        events = [json.loads(line[len("data: "):]) for line in streamed.text.splitlines()
                  if line.startswith("data: ")]
        assert [e["params"]["progressToken"] for e in events[:-1]] == ["mine-1", "mine-1"]
        assert [e["params"]["progress"] for e in events[:-1]] == [1, 2]
        assert events[-1]["id"] == "call-9" and "completed" in text_of(events[-1])
        # An agent that cannot take an event stream gets the result alone, as JSON.
        json_only = raw.post({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": LONG, "arguments": arguments, "_meta": {"progressToken": 5}}},
            headers={"accept": "application/json"})
        assert json_only.headers["content-type"] == "application/json" and "completed" in text_of(json_only.json())


async def test_log_messages_reach_entitled_sessions_at_their_level(stack: Stack) -> None:
    """Each session gets what its own level lets through; the server is set to the most
    verbose level an entitled session asked for; an agent not entitled to the server gets
    nothing, whatever level it asks for."""
    name, verbose_token = stack.agent("local", "local/everything")
    _quiet, quiet_token = stack.agent("local", "local/everything/echo")
    _outsider, outsider_token = stack.agent("local")
    heard: dict[str, list[types.LoggingMessageNotificationParams]] = {"verbose": [], "quiet": [], "outsider": []}

    def into(key: str):  # noqa: ANN202
        def handler(message: object) -> None:
            if isinstance(message, types.LoggingMessageNotification):
                heard[key].append(message.params)
        return handler

    async with (agent(stack.url, verbose_token, SERVER_EP, on_message=into("verbose")) as verbose,
                agent(stack.url, quiet_token, on_message=into("quiet")) as quiet,
                agent(stack.url, outsider_token, on_message=into("outsider")) as outsider):
        await outsider.set_logging_level("debug")
        await quiet.set_logging_level("error")
        assert stack.gateway.call(lambda g: g.upstreams.live(g.snapshot.surface.server_ids["everything"]).log_level) \
            == "error"
        await verbose.set_logging_level("info")
        assert stack.gateway.call(lambda g: g.upstreams.live(g.snapshot.surface.server_ids["everything"]).log_level) \
            == "info"
        # Subscribing makes server-everything log at info ("Received Subscribe Resource request").
        await verbose.subscribe_resource("demo://resource/static/document/architecture.md")

        async def verbose_heard() -> bool:
            return any("Subscribe" in str(p.data) for p in heard["verbose"])

        await eventually(verbose_heard, 10)
        await asyncio.sleep(0.5)
    assert heard["outsider"] == []
    assert all(severity(p.level) >= severity("error") for p in heard["quiet"])
    assert not any("Subscribe" in str(p.data) for p in heard["quiet"])
    [record] = records(stack, name, "logging.set-level")
    assert record["detail"]["level"] == "info" and record["detail"]["upstream"] == {"everything": "info"}


async def test_resource_updates_reach_subscribers_still_entitled(stack: Stack) -> None:
    """server-everything sends updates every 5 s for subscribed URIs: a subscriber gets
    them until its grant is revoked, a session that did not subscribe never does."""
    from console.services import grants
    from console.services.grants import Target

    uri = "demo://resource/static/document/architecture.md"
    name, token = stack.agent("local", "local/everything")
    _other, other_token = stack.agent("local", "local/everything")
    updates: dict[str, list[str]] = {"subscriber": [], "other": []}

    def into(key: str):  # noqa: ANN202
        def handler(message: object) -> None:
            if isinstance(message, types.ResourceUpdatedNotification):
                updates[key].append(str(message.params.uri))
        return handler

    async with (agent(stack.url, token, on_message=into("subscriber")) as client,
                agent(stack.url, other_token, on_message=into("other")) as other):
        assert client.server_capabilities.resources.subscribe is True
        await client.subscribe_resource(uri)
        await client.call_tool("everything__toggle-subscriber-updates", {})
        try:
            await eventually(lambda: _true(updates["subscriber"]), 12)
            assert set(updates["subscriber"]) == {uri}
            grants.revoke(stack.ws, name, Target.parse("local/everything"))
            await asyncio.sleep(0.5)  # the gateway follows the vault
            before = len(updates["subscriber"])
            await asyncio.sleep(6)
            assert len(updates["subscriber"]) == before, "a revoked agent still got updates"
        finally:
            await other.call_tool("everything__toggle-subscriber-updates", {})
        await other.unsubscribe_resource(uri)  # not its subscription: nothing happens
    assert updates["other"] == []
    [record] = records(stack, name, "resource.subscribe")
    assert record["decision"] == "allow" and record["target"] == f"resource:local/everything/{uri}"


async def _true(value: object) -> bool:
    return bool(value)


async def test_completions_are_forwarded_for_granted_prompts(stack: Stack) -> None:
    _name, token = stack.agent("local", "local/everything")
    _none, other = stack.agent("local", "local/everything/echo")
    ref = types.PromptReference(type="ref/prompt", name="everything__completable-prompt")
    async with agent(stack.url, token) as client:
        done = await client.complete(ref, {"name": "department", "value": "Ma"})
        assert done.completion.values == ["Marketing"]
    async with agent(stack.url, other) as client:
        with pytest.raises(Exception, match="not available"):
            await client.complete(ref, {"name": "department", "value": "Ma"})


async def test_an_agent_cancels_its_call_upstream(stack: Stack) -> None:
    """notifications/cancelled from the agent stops the server's work and ends the call."""
    name, token = stack.agent("local", f"local/everything/{LONG}")
    with RawAgent(stack.url, token, SERVER_EP) as raw:
        raw.initialize()
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(None, lambda: raw.request(
            "tools/call", {"name": LONG, "arguments": {"duration": 20, "steps": 2}}, request_id="long-1"))
        await asyncio.sleep(1.0)
        started = loop.time()
        await loop.run_in_executor(None, lambda: raw.post(
            {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "long-1"}}))
        reply = (await call).json()
        assert loop.time() - started < 3
        assert "cancel" in reply["error"]["message"]
    [record] = records(stack, name, "tool.call")
    assert record["decision"] == "error"


async def test_resource_and_prompt_list_changes_reach_the_sessions(stack: Stack) -> None:
    """A server that gains a prompt and a resource while running: once the owner approves
    them, the agent's session is told prompts/list_changed and resources/list_changed."""
    from console.services.tools import approve

    def item(kind: str, name: str) -> dict:
        return {"uri": f"note://{name}", "name": name} if kind == "resources" else {"name": name}

    def definitions(*names: str) -> str:
        return json.dumps({"tools": [{"name": "echo", "description": "Echoes.", "inputSchema": {"type": "object"}}],
                           **{kind: [item(kind, n) for n in names] for kind in ("resources", "prompts")}})

    await asyncio.to_thread(stack.add_shapeshifter, "morph", json.loads(definitions("first")))
    _name, token = stack.agent("local", "local/morph")
    heard: list[str] = []

    def on_message(message: object) -> None:
        if isinstance(message, types.PromptListChangedNotification | types.ResourceListChangedNotification):
            heard.append(message.method)

    async with agent(stack.url, token, on_message=on_message) as client:
        assert [p.name for p in (await client.list_prompts()).prompts] == ["morph__first"]
        assert [str(r.uri) for r in (await client.list_resources()).resources] == ["note://first"]
        stack.tools_file("morph").write_text(definitions("first", "second"))

        async def approved_and_told() -> bool:
            await asyncio.to_thread(approve, stack.ws, "local", "morph")
            return {"notifications/prompts/list_changed", "notifications/resources/list_changed"} <= set(heard)

        await eventually(approved_and_told, 20, step=0.5)
        assert len((await client.list_prompts()).prompts) == 2
        assert len((await client.list_resources()).resources) == 2
