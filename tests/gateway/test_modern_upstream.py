"""A server that speaks only MCP 2026-07-28, behind the gateway (issue 17, part 3).

The conformance suite's reference server, built with the mcp SDK, run by its
``stdio-2026`` mode: the SDK's own serving loop of the new era, which answers
``initialize`` with -32022. The gateway's upstream session finds that era on the same
stream; agents of either era reach it with the same grants, progress, per-request
logging, and its input-required results (sampling, elicitation, roots) relayed under
the owner's per-server switches: as requests on a session's stream to an agent of the
handshake era, as input-required results to one of the new era.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import mcp_types as types
import pytest
from mcp import MCPError

from console.services import servers
from console.services.server_asks import set_may_ask
from console.services.tools import approve
from console.workspace import DISCOVERY_META
from tests.gateway.conftest import Stack, _stack
from tests.gateway.test_agent_asks import sampler, text
from tests.support.conformance_targets import Target
from tests.support.gateway import agent, eventually
from tests.support.sharedkeys import shared_keyring_home

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]
NEW = "2026-07-28"
NAME = "ref26"
ENDPOINT = f"/servers/{NAME}/mcp"
BOTH = "ref"
LOGGED = ["Tool execution started", "Tool processing data", "Tool execution completed"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> Iterator[Stack]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("modern-upstream")
    with shared_keyring_home(root):
        for stack in _stack(root, ()):
            modern, both = Target("conformance26", stdio="stdio-2026"), Target("conformance")
            servers.add_server(stack.ws, "local", modern.entry(stack.paths), name=NAME, mounts=modern.mounts())
            approve(stack.ws, "local", NAME)
            # The same server speaking both eras: the gateway keeps the handshake era with it.
            servers.add_server(stack.ws, "local", both.entry(stack.paths), name=BOTH, mounts=both.mounts())
            approve(stack.ws, "local", BOTH)
            yield stack


async def may_ask(stack: Stack, *kinds: str) -> None:
    """The owner's switches (a switch that moves restarts the server)."""
    def switch() -> None:
        for kind in ("sampling", "elicitation", "roots"):
            set_may_ask(stack.ws, f"local/{NAME}", kind, kind in kinds)
        approve(stack.ws, "local", NAME)
    await asyncio.to_thread(switch)


def discovered_version(stack: Stack) -> str:
    server = servers.resolve(stack.ws, f"local/{NAME}").server
    return (stack.ws.repos.meta.get(DISCOVERY_META + server.id) or {}).get("protocol_version", "")


@pytest.mark.parametrize("mode", ["legacy", NEW])
@pytest.mark.parametrize(("endpoint", "prefix"), [("/mcp", f"{NAME}__"), (ENDPOINT, "")])
async def test_agents_of_both_eras_call_a_server_of_the_new_era(stack: Stack, mode: str, endpoint: str,
                                                                prefix: str) -> None:
    """Listed and called as any server is, within the agent's grants; progress streams."""
    _name, token = stack.agent("local", f"local/{NAME}/test_simple_text", f"local/{NAME}/test_tool_with_progress")
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with agent(stack.url, token, endpoint, mode=mode) as client:
        listed = sorted(t.name for t in (await client.list_tools(cache_mode="bypass")).tools)
        assert listed == [f"{prefix}test_simple_text", f"{prefix}test_tool_with_progress"]
        result = await client.call_tool(f"{prefix}test_simple_text", {})
        assert "simple text" in text(result).lower()
        await client.call_tool(f"{prefix}test_tool_with_progress", {}, progress_callback=on_progress)
        assert progress == [0, 50, 100]
        with pytest.raises(MCPError, match="not granted"):
            await client.call_tool(f"{prefix}test_error_handling", {})
    assert discovered_version(stack) == NEW


def elicitor(answers: dict[str, dict[str, Any]], seen: list[str]):  # noqa: ANN201
    """Answers each form by the first word of its message that names a field it knows."""
    async def elicitation(context: Any, params: Any) -> types.ElicitResult:
        seen.append(params.message)
        for field, content in answers.items():
            if field in params.message.lower():
                return types.ElicitResult(action="accept", content=content)
        return types.ElicitResult(action="accept", content={"name": "Ada"})
    return elicitation


async def roots_of(context: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri="file:///work", name="work")])


@pytest.mark.parametrize("mode", ["legacy", NEW])
async def test_what_the_server_asks_in_its_result_is_asked_of_the_agent(stack: Stack, mode: str) -> None:
    """Sampling, elicitation over three rounds, roots, several at once, and the server's
    own requestState kept in the gateway (the server checks it came back unchanged)."""
    await may_ask(stack, "sampling", "elicitation", "roots")
    _name, token = stack.agent("local", f"local/{NAME}")
    sampled: list[str] = []
    forms: list[str] = []
    async with agent(stack.url, token, ENDPOINT, mode=mode, sampling_callback=sampler(sampled, "Paris"),
                     elicitation_callback=elicitor({"name": {"name": "Ada"}, "color": {"color": "green"}}, forms),
                     list_roots_callback=roots_of) as client:
        said = text(await client.call_tool("test_input_required_result_sampling", {}))
        assert said == "Model said: Paris" and sampled == ["What is the capital of France?"]
        assert text(await client.call_tool("test_input_required_result_multi_round", {})) == "Ada likes green."
        assert text(await client.call_tool("test_input_required_result_list_roots", {})) == "Client exposed 1 root(s)."
        assert text(await client.call_tool("test_input_required_result_multiple_inputs", {})) == "All inputs received."
        kept = await client.call_tool("test_input_required_result_request_state", {})
        assert text(kept) == "state-ok: confirmation received"
    stack.gateway.flush_audit()
    records = [r for r in stack.ws.audit.records() if r["action"].startswith("server.")
               and r["target"] == f"server:local/{NAME}"]
    assert {r["action"] for r in records} >= {"server.sampling", "server.elicitation", "server.roots"}


async def test_input_the_owner_has_not_allowed_ends_the_call(stack: Stack) -> None:
    """Sampling switched off: the agent is not asked, its call ends with why, the refusal
    is recorded; elicitation still on works."""
    await may_ask(stack, "elicitation")
    _name, token = stack.agent("local", f"local/{NAME}")
    sampled: list[str] = []
    async with agent(stack.url, token, ENDPOINT, mode=NEW, sampling_callback=sampler(sampled, "Paris"),
                     elicitation_callback=elicitor({}, [])) as client:
        with pytest.raises(MCPError, match="has not allowed server ref26 to ask agents for sampling"):
            await client.call_tool("test_input_required_result_sampling", {})
        assert text(await client.call_tool("test_input_required_result_elicitation", {})) == "Hello, Ada!"
    assert sampled == []
    stack.gateway.flush_audit()
    refused = [r for r in stack.ws.audit.records() if r["action"] == "server.sampling"][-1]
    assert refused["decision"] == "deny" and refused["detail"]["outcome"] == "not-allowed"


@pytest.mark.parametrize("server", [NAME, BOTH])
@pytest.mark.parametrize("endpoint", ["/mcp", "per-server"])
async def test_a_stateless_request_hears_the_log_messages_it_asked_for(stack: Stack, server: str,
                                                                       endpoint: str) -> None:
    """``io.modelcontextprotocol/logLevel`` in a 2026-07-28 request: the server's messages
    while it runs come on its own response stream, at that level and above, from a server
    of either era; discover says the gateway logs; a request that asks nothing hears nothing."""
    _name, token = stack.agent("local", f"local/{server}/test_tool_with_logging")
    path, tool = ("/mcp", f"{server}__test_tool_with_logging") if endpoint == "/mcp" else \
        (f"/servers/{server}/mcp", "test_tool_with_logging")
    heard: list[tuple[str, str]] = []

    async def logged(params: types.LoggingMessageNotificationParams) -> None:
        heard.append((params.level, str(params.data)))

    async with agent(stack.url, token, path, mode="auto", log_level="info", logging_callback=logged) as client:
        assert client.protocol_version == NEW and client.server_capabilities.logging is not None
        await client.call_tool(tool, {})
    assert [data for _level, data in heard] == LOGGED and {level for level, _ in heard} == {"info"}
    heard.clear()
    async with agent(stack.url, token, path, mode=NEW, log_level="error", logging_callback=logged) as client:
        await client.call_tool(tool, {})
    async with agent(stack.url, token, path, mode=NEW, logging_callback=logged) as client:
        await client.call_tool(tool, {})
    assert heard == []


async def test_a_session_hears_a_new_era_server_it_set_a_level_for(stack: Stack) -> None:
    """logging/setLevel of a handshake-era session reaches a server of the new era as the
    level of each of its calls; the messages come on the session's stream."""
    _name, token = stack.agent("local", f"local/{NAME}/test_tool_with_logging")
    heard: list[str] = []

    async def logged(params: types.LoggingMessageNotificationParams) -> None:
        heard.append(str(params.data))

    async with agent(stack.url, token, ENDPOINT, logging_callback=logged) as client:
        await client.set_logging_level("info")
        await client.call_tool("test_tool_with_logging", {})
        await eventually(lambda: _async(len(heard) >= 3), 10)
    assert heard == LOGGED


async def _async(value: object) -> object:
    return value
