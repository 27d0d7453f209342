"""Calls that wait for the owner (issue 18): the mcp SDK Client as the agent, through the
real gateway, to the real server-everything in a container; the owner decides with the
real ``tbx approvals`` commands (the CLI finds the gateway as it does any running one)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from mcp.shared.exceptions import MCPError

from console.cli import cli
from console.services import grants
from console.services.grants import Target
from tests.gateway.conftest import Stack, _stack, subprocess_env
from tests.support.approvals import held as held_by
from tests.support.approvals import owner
from tests.support.gateway import agent, eventually
from tests.support.sharedkeys import shared_keyring_home

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]
TIMEOUT = 4.0
ECHO = "local/everything/echo"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> Iterator[Stack]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("approvals")
    with shared_keyring_home(root):
        yield from _stack(root, ("everything",), settings=f"approval_timeout_seconds = {TIMEOUT}\n"
                                                          f"approval_progress_seconds = 0.3\n")


def asking_agent(stack: Stack, target: str = ECHO) -> tuple[str, str]:
    name, token = stack.agent("local")
    grants.grant(stack.ws, name, Target.parse(target), ask=True)
    return name, token


def tbx(stack: Stack, *args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env={**os.environ, "TBX_HOME": str(stack.paths.data_dir)})


async def run_tbx(stack: Stack, *args: str) -> Any:
    result = await asyncio.to_thread(tbx, stack, *args)
    assert result.exit_code == 0, (result.output, result.stderr if result.stderr_bytes else "")
    return result


async def listed(stack: Stack) -> list[dict[str, Any]]:
    """The held calls as ``tbx approvals list --json`` says."""
    return json.loads((await run_tbx(stack, "approvals", "list", "--json")).stdout)


async def held(stack: Stack, agent_name: str, count: int = 1) -> list[dict[str, Any]]:
    return await held_by(stack, agent_name, count, listed)


def records(stack: Stack, agent_name: str, prefix: str) -> list[dict]:
    stack.gateway.flush_audit()
    return [r for r in stack.ws.audit.records() if r.get("agent") == agent_name and r["action"].startswith(prefix)]


def sha256(arguments: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(arguments, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


async def test_a_held_call_is_shown_then_allowed_and_its_result_delivered(stack: Stack) -> None:
    name, token = asking_agent(stack)
    async with agent(stack.url, token) as client:
        assert "everything__echo" in {t.name for t in (await client.list_tools(cache_mode="bypass")).tools}
        call = asyncio.ensure_future(client.call_tool("everything__echo", {"message": "ship it"}))
        (pending,) = await held(stack, name)
        assert not call.done()
        assert (pending["target"], pending["server"], pending["toolbox"], pending["name"]) == \
            ("tool:local/everything/echo", "everything", "local", "echo")
        assert pending["arguments"] == {"message": "ship it"}
        assert pending["sha256"] == sha256({"message": "ship it"})
        assert pending["description"] and pending["trust"] == "approved"
        shown = (await run_tbx(stack, "approvals", "allow", pending["id"])).stdout
        assert '"message": "ship it"' in shown and "allowed" in shown
        result = await asyncio.wait_for(call, 20)
        assert result.content[0].text.endswith("ship it")  # type: ignore[union-attr]
    assert [r["action"] for r in records(stack, name, "approval.")] == ["approval.request", "approval.allow"]
    decision = records(stack, name, "approval.allow")[0]
    assert decision["actor"] == "owner" and decision["detail"]["decider"].startswith("owner:")
    assert decision["detail"]["waited_ms"] > 0 and decision["detail"]["sha256"] == pending["sha256"]
    (called,) = records(stack, name, "tool.call")
    assert called["decision"] == "allow" and called["detail"]["approval"]["outcome"] == "allowed"
    assert called["detail"]["arguments"]["sha256"] == pending["sha256"]
    listed = (await run_tbx(stack, "audit", "list", "--agent", name, "--action", "approval")).stdout
    assert "approval.request" in listed and "approval.allow" in listed


async def test_a_stateless_2026_call_is_held_the_same_way(stack: Stack) -> None:
    name, token = asking_agent(stack)
    async with agent(stack.url, token, mode="2026-07-28") as client:
        call = asyncio.ensure_future(client.call_tool("everything__echo", {"message": "modern"}))
        (pending,) = await held(stack, name)
        assert pending["arguments"] == {"message": "modern"}
        await run_tbx(stack, "approvals", "allow", pending["id"])
        assert (await asyncio.wait_for(call, 20)).content[0].text.endswith("modern")  # type: ignore[union-attr]


async def test_a_denied_call_is_refused_and_never_reaches_the_server(stack: Stack) -> None:
    name, token = asking_agent(stack)
    async with agent(stack.url, token) as client:
        call = asyncio.ensure_future(client.call_tool("everything__echo", {"message": "no"}))
        (pending,) = await held(stack, name)
        await run_tbx(stack, "approvals", "deny", pending["id"])
        with pytest.raises(MCPError) as refused:
            await asyncio.wait_for(call, 20)
        assert "the owner denied the call" in refused.value.error.message
    (called,) = records(stack, name, "tool.call")
    assert (called["decision"], called["detail"]["reason"]) == ("deny", "approval-denied")
    assert "result_bytes" not in called["detail"]


async def test_an_undecided_call_times_out_with_a_clear_error(stack: Stack) -> None:
    name, token = asking_agent(stack)
    async with agent(stack.url, token) as client:
        started = asyncio.get_running_loop().time()
        with pytest.raises(MCPError) as refused:
            await client.call_tool("everything__echo", {"message": "anyone?"})
        waited = asyncio.get_running_loop().time() - started
    assert f"the owner did not decide within {TIMEOUT:g}s" in refused.value.error.message
    assert TIMEOUT - 0.5 < waited < TIMEOUT + 5
    assert owner(stack).pending()[1] == []
    (decided,) = records(stack, name, "approval.deny")
    assert (decided["actor"], decided["detail"]["outcome"]) == ("gateway", "timed-out")


async def test_progress_keeps_a_waiting_agent_informed(stack: Stack) -> None:
    name, token = asking_agent(stack)
    told: list[str] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        told.append(message or "")

    async with agent(stack.url, token) as client:
        call = asyncio.ensure_future(client.call_tool("everything__echo", {"message": "p"}, progress_callback=progress))
        (pending,) = await held(stack, name)
        await eventually(lambda: asyncio.sleep(0, len(told) >= 2), 10)
        assert all(pending["id"] in message and "waiting for the owner's approval" in message for message in told)
        await asyncio.to_thread(owner(stack).decide, pending["id"], pending["sha256"], allow=True)
        assert (await asyncio.wait_for(call, 20)).content[0].text.endswith("p")  # type: ignore[union-attr]


async def test_allowed_for_minutes_goes_through_then_asks_again(stack: Stack) -> None:
    name, token = asking_agent(stack)
    async with agent(stack.url, token) as client:
        call = asyncio.ensure_future(client.call_tool("everything__echo", {"message": "first"}))
        (pending,) = await held(stack, name)
        await run_tbx(stack, "approvals", "allow", pending["id"], "--for", "4s")
        assert (await asyncio.wait_for(call, 20)).content[0].text.endswith("first")  # type: ignore[union-attr]
        # Within the 4 s: straight through, nothing held.
        again = await asyncio.wait_for(client.call_tool("everything__echo", {"message": "second"}), 3)
        assert again.content[0].text.endswith("second")  # type: ignore[union-attr]
        await asyncio.sleep(4.5)
        later = asyncio.ensure_future(client.call_tool("everything__echo", {"message": "third"}))
        (pending,) = await held(stack, name)
        assert pending["arguments"] == {"message": "third"}
        await run_tbx(stack, "approvals", "deny", pending["id"])
        with pytest.raises(MCPError):
            await asyncio.wait_for(later, 20)
    outcomes = [r["detail"].get("approval", {}).get("outcome") for r in records(stack, name, "tool.call")]
    assert outcomes == ["allowed-for", None, "denied"]


async def test_two_agents_wait_at_once_and_each_gets_its_own_decision(stack: Stack) -> None:
    one, one_token = asking_agent(stack)
    two, two_token = asking_agent(stack)
    async with agent(stack.url, one_token) as a, agent(stack.url, two_token) as b:
        first = asyncio.ensure_future(a.call_tool("everything__echo", {"message": "from one"}))
        second = asyncio.ensure_future(b.call_tool("everything__echo", {"message": "from two"}))
        (held_one,), (held_two,) = await held(stack, one), await held(stack, two)
        assert {p["agent"] for p in owner(stack).pending()[1]} >= {one, two}
        await run_tbx(stack, "approvals", "deny", held_two["id"])
        await run_tbx(stack, "approvals", "allow", held_one["id"])
        assert (await asyncio.wait_for(first, 20)).content[0].text.endswith("from one")  # type: ignore[union-attr]
        with pytest.raises(MCPError):
            await asyncio.wait_for(second, 20)


async def test_always_deny_refuses_this_call_and_the_next_without_asking(stack: Stack) -> None:
    name, token = asking_agent(stack, "local/everything")
    async with agent(stack.url, token) as client:
        call = asyncio.ensure_future(client.call_tool("everything__echo", {"message": "x"}))
        (pending,) = await held(stack, name)
        await run_tbx(stack, "approvals", "deny", pending["id"], "--always")
        with pytest.raises(MCPError):
            await asyncio.wait_for(call, 20)
        with pytest.raises(MCPError) as refused:
            await asyncio.wait_for(client.call_tool("everything__echo", {"message": "y"}), 5)
        assert "not granted" in refused.value.error.message
        assert owner(stack).pending()[1] == []


async def test_a_gateway_that_stops_refuses_the_held_calls_and_says_why(stack: Stack) -> None:
    name, token = asking_agent(stack)
    async with agent(stack.url, token) as client:
        call = asyncio.ensure_future(client.call_tool("everything__echo", {"message": "late"}))
        await held(stack, name)
        await asyncio.to_thread(stack.gateway.stop)
        with pytest.raises(MCPError) as refused:
            await asyncio.wait_for(call, 20)
        assert "the gateway is stopping" in refused.value.error.message
    stack.gateway.gateway = None
    stack.gateway.start()  # a gateway again, which the module's finalizer stops
    (decided,) = records(stack, name, "approval.deny")
    assert decided["detail"]["outcome"] == "gateway-stopped"


async def test_approvals_watch_prompts_for_each_held_call_in_a_terminal(stack: Stack) -> None:
    name, token = asking_agent(stack)
    watch = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "console", "approvals", "watch", "--toolbox", "local", "--wait", "2",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**subprocess_env(), "TBX_HOME": str(stack.paths.data_dir)})
    assert watch.stdin is not None and watch.stdout is not None
    try:
        async with agent(stack.url, token) as client:
            call = asyncio.ensure_future(client.call_tool("everything__echo", {"message": "watched"}))
            said = b""
            while b"[a]llow" not in said:
                said += await asyncio.wait_for(watch.stdout.read(200), 30)
            assert f"{name} wants tool:local/everything/echo".encode() in said and b'"watched"' in said
            watch.stdin.write(b"a\n")
            await watch.stdin.drain()
            assert (await asyncio.wait_for(call, 20)).content[0].text.endswith("watched")  # type: ignore[union-attr]
            while b"allowed" not in said:
                said += await asyncio.wait_for(watch.stdout.read(200), 10)
    finally:
        watch.kill()
        await watch.wait()
    (decided,) = records(stack, name, "approval.allow")
    assert decided["detail"]["decider"].startswith("owner:")
