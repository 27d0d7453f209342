"""Editing a remote server's URL and headers (issue 21): ``edit_remote_server`` and
``tbx server edit --url/--header/--remove-header``, against real SDK servers on
127.0.0.1 and the module's real gateway, with a real agent calling through it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import timedelta

import pytest
from mcp.shared.exceptions import MCPError

from console.errors import TbxError, UsageError
from console.model import Connection, OAuthApp, Secret, utcnow
from console.oauth.tokens import TokenSet
from console.services import servers
from console.services.mcp_sign_in import MCP, RESOURCE
from console.services.remote_edit import edit_remote_server
from console.services.remote_servers import add_remote_server
from console.services.tools import approve
from tests.conftest import CANARY
from tests.gateway import test_remote_servers as shared
from tests.gateway.conftest import REPO, Stack, subprocess_env
from tests.support.gateway import agent, eventually
from tests.support.remote_mcp import RemoteServer, free_port

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]
stack, everything_written, records = shared.stack, shared.everything_written, shared.records
OTHER = "other-header-canary-5b1f0c"
TOKEN = "upstream-token-canary-77e2"


def tbx(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={**subprocess_env(), **(env or {})}, stdin=subprocess.DEVNULL)


def secret_values(stack: Stack) -> list[str]:
    stack.ws.refresh()
    return [s.value for s in stack.ws.repos.secrets]


async def test_a_new_url_and_headers_are_tried_then_kept_and_a_changed_tool_waits_for_approval(
        stack: Stack) -> None:
    first = RemoteServer(stack.root / "edit-a").start()
    second = RemoteServer(stack.root / "edit-b", description="Echo it, changed.").start()
    try:
        await asyncio.to_thread(add_remote_server, stack.ws, "local", first.url, name="movable",
                                headers={"X-Api-Key": CANARY})
        await asyncio.to_thread(approve, stack.ws, "local", "movable")
        _name, token = stack.agent("local", "local/movable/echo")
        async with agent(stack.url, token) as client:
            async def echoes(where: RemoteServer) -> bool:
                before = len(where.requests())
                try:
                    result = await client.call_tool("movable__echo", {"text": "hi"})
                except MCPError:  # reconnecting to the new URL
                    return False
                return not result.is_error and len(where.requests()) > before

            await eventually(lambda: echoes(first), within=20, step=0.2)
            outcome = await asyncio.to_thread(edit_remote_server, stack.ws, "local/movable", url=second.url,
                                              headers={"X-Other": OTHER}, remove_headers=["x-api-key"])
            assert outcome.changed == ["url", "headers"]
            assert outcome.headers == {"added": ["X-Other"], "replaced": [], "removed": ["X-Api-Key"]}
            assert outcome.discovery is not None and outcome.discovery.changed == ["echo"]
            seen = second.requests()
            assert seen and all(r["headers"].get("x-other") == OTHER and "x-api-key" not in r["headers"]
                                for r in seen)
            assert CANARY not in secret_values(stack) and OTHER in secret_values(stack)
            server = servers.resolve(stack.ws, "local/movable").server
            assert (server.url, sorted(server.secret_refs)) == (second.url, ["X-Other"])

            # The gateway goes to the new URL, and the changed echo waits for a new approval.
            async def blocked() -> bool:
                try:
                    await client.call_tool("movable__echo", {"text": "hi"})
                except MCPError as refused:  # a changed definition is callable by no one until approved
                    return "not granted" in str(refused)
                return False
            await eventually(blocked, within=20, step=0.2)
            # The old server goes: what the old channel may still send as it closes (a ping,
            # its session's end) is no call, and a call still routed there could only fail.
            first.stop()
            await asyncio.to_thread(approve, stack.ws, "local", "movable")
            await eventually(lambda: echoes(second), within=20, step=0.2)
        [record] = [r for r in records(stack, "server.edit") if r["target"] == "server:local/movable"]
        assert record["detail"]["changed"] == ["url", "headers"]
        assert record["detail"]["origin"] == f"http://127.0.0.1:{second.port}"
        assert record["detail"]["added"] == ["X-Other"] and record["detail"]["removed"] == ["X-Api-Key"]
        listed = tbx("server", "list", "local", "--json")
        assert listed.returncode == 0, listed.stderr
        written = everything_written(stack) + listed.stdout
        assert CANARY not in written and OTHER not in written
    finally:
        first.stop()
        second.stop()
        await asyncio.to_thread(servers.remove_server, stack.ws, "local/movable")


def test_a_url_that_does_not_answer_changes_nothing(stack: Stack) -> None:
    with RemoteServer(stack.root / "edit-c") as remote:
        add_remote_server(stack.ws, "local", remote.url, name="stays", headers={"X-Api-Key": CANARY})
        before = servers.resolve(stack.ws, "local/stays").server
        nowhere = f"http://127.0.0.1:{free_port()}/mcp"
        with pytest.raises(TbxError) as raised:
            edit_remote_server(stack.ws, "local/stays", url=nowhere, headers={"X-Api-Key": OTHER})
        assert "\n" not in str(raised.value) and CANARY not in str(raised.value)
        stack.ws.refresh()
        after = servers.resolve(stack.ws, "local/stays").server
        assert (after.url, after.secret_refs) == (before.url, before.secret_refs)
        assert OTHER not in secret_values(stack)
        assert not [r for r in records(stack, "server.edit") if r["target"] == "server:local/stays"]
        for bad, says in [({"url": "http://example.org/mcp"}, "https"), ({"headers": {"Host": "x"}}, "header"),
                          ({"remove_headers": ["X-Nope"]}, "no header X-Nope")]:
            with pytest.raises(UsageError, match=says):
                edit_remote_server(stack.ws, "local/stays", **bad)  # type: ignore[arg-type]
        servers.remove_server(stack.ws, "local/stays")


def _signed_in(stack: Stack, resource: str) -> str:
    """A kept MCP sign-in for ``resource`` (as 'tbx server login' leaves one): its token
    is good for an hour, so nothing here asks an authorization server."""
    with stack.ws.change() as change:
        app = change.repos.oauth_apps.put(OAuthApp(provider=MCP, client_id="edit-test", issuer="http://127.0.0.1:9",
                                                   hosts={RESOURCE: resource, "token": "http://127.0.0.1:9/token"},
                                                   auth_method="none"))
        expires = utcnow() + timedelta(hours=1)
        secret = change.repos.secrets.put(Secret(name="oauth/edit-test", value=TokenSet(
            access_token=TOKEN, refresh_token=None, expires_at=expires.timestamp(), scopes=[]).to_secret_value()))
        connection = change.repos.connections.put(Connection(provider=MCP, account=resource, app=app.id,
                                                             token_secret=secret.id, expires=expires))
    return connection.id


def test_a_url_on_another_origin_unbinds_the_sign_in_whose_token_never_goes_there(stack: Stack) -> None:
    with RemoteServer(stack.root / "edit-d") as first, RemoteServer(stack.root / "edit-e") as second:
        connection = _signed_in(stack, first.url)
        add_remote_server(stack.ws, "local", first.url, name="signed", connection=connection)
        assert all(r["headers"].get("authorization") == f"Bearer {TOKEN}" for r in first.requests())
        moved = tbx("server", "edit", "local/signed", "--url", second.url)
        assert moved.returncode == 0 and moved.stderr == "", moved.stderr
        assert "sign in again with 'tbx server login local/signed'" in moved.stdout
        assert second.requests() and not any(TOKEN in json.dumps(r) for r in second.requests())
        stack.ws.refresh()
        assert servers.resolve(stack.ws, "local/signed").server.connection is None
        [record] = [r for r in records(stack, "server.edit") if r["target"] == "server:local/signed"]
        assert record["detail"]["unbound"] == connection and record["detail"]["connection"] is None
        servers.remove_server(stack.ws, "local/signed")


def test_tbx_server_edit_sets_replaces_and_removes_headers_from_env_vars(stack: Stack) -> None:
    with RemoteServer(stack.root / "edit-f") as remote:
        assert tbx("server", "add", "local", "--url", remote.url, "--name", "keyed", "--header", "X-Api-Key=K",
                   env={"K": "old-value-4c1e"}).returncode == 0
        before = len(remote.requests())
        replaced = tbx("server", "edit", "local/keyed", "--header", "X-Api-Key=K", "--header", "X-Other=O",
                       env={"K": CANARY, "O": OTHER})
        assert replaced.returncode == 0 and replaced.stderr == "", replaced.stderr
        assert "headers changed (headers added X-Other; replaced X-Api-Key)" in replaced.stdout
        # The edit's own session (the gateway's goes on with the old until it is made again).
        assert any(r["headers"].get("x-api-key") == CANARY for r in remote.requests()[before:])
        before = len(remote.requests())
        assert "old-value-4c1e" not in secret_values(stack)
        dropped = tbx("server", "edit", "local/keyed", "--remove-header", "X-Other")
        assert dropped.returncode == 0 and dropped.stderr == "", dropped.stderr
        assert any("x-other" not in r["headers"] and r["headers"].get("x-api-key") == CANARY
                   for r in remote.requests()[before:])
        assert OTHER not in secret_values(stack)
        mixed = tbx("server", "edit", "local/keyed", "--url", remote.url, "--cpus", "1")
        assert mixed.returncode != 0 and "pass them alone" in mixed.stderr
        written = everything_written(stack) + replaced.stdout + dropped.stdout
        assert CANARY not in written and OTHER not in written
        assert tbx("server", "remove", "local/keyed", "--yes").returncode == 0
