"""A remote MCP server behind MCP authorization, end to end: ``tbx server add --url`` meets
its 401, signs in (device code here; the browser is tests/oauth/test_mcp_upstream.py's),
keeps the token as a connection, and an agent's call through the gateway reaches the
server with that token: never the agent's, and the agent never sees the server's."""

from __future__ import annotations

import asyncio
import threading

from console.services import agents, grants
from console.services.connection_tokens import token_set
from console.services.grants import Target
from console.services.tools import approve
from console.workspace import Workspace
from tests.oauth.test_mcp_login_cli import approve_when_asked
from tests.support.gateway import RunningGateway, agent
from tests.support.mcp_protected import ProtectedMcpServer
from tests.support.oauth_provider import LocalOAuthProvider


def test_an_agent_calls_a_signed_in_remote_server_through_the_gateway(
        tbx, tbx_home, memory_keyring, docker_engine, provider: LocalOAuthProvider,  # noqa: ANN001
        server: ProtectedMcpServer) -> None:
    provider.mcp.cimd = False
    assert tbx("init").exit_code == 0
    assert tbx("toolbox", "add", "local", "--local").exit_code == 0
    threading.Thread(target=approve_when_asked, args=(provider,), daemon=True).start()
    added = tbx("server", "add", "local", "--url", server.url, "--name", "vendor", "--device")
    assert added.exit_code == 0, added.stderr
    assert "it asks for sign-in" in added.stdout and "answers with 1 tool" in added.stdout
    ws = Workspace.open(tbx_home)
    box = ws.repos.toolboxes.require("local")
    vendor = ws.repos.servers.by_name(box.id, "vendor")
    assert vendor is not None and vendor.connection is not None
    upstream = token_set(ws, ws.repos.connections.get(vendor.connection)).access_token  # type: ignore[arg-type]
    assert upstream not in added.stdout + added.stderr
    approve(ws, "local", "vendor")
    _agent, token = agents.add_agent(ws, "far-agent")
    grants.grant(ws, "far-agent", Target.parse("local"))
    grants.grant(ws, "far-agent", Target.parse("local/vendor"))
    gateway = RunningGateway(tbx_home).start()
    try:
        async def call() -> str:
            async with agent(gateway.url, token) as client:
                result = await client.call_tool("vendor__echo", {"text": "through"})
                return result.model_dump_json()

        said = asyncio.run(call())
    finally:
        gateway.stop()
    assert "echo: through" in said and upstream not in said
    seen = [value for value in server.authorizations if value is not None]
    assert seen and seen[-1] == f"Bearer {upstream}"
    assert not any(token in value for value in server.authorizations if value)

    # Added again under another name: the sign-in made before is used, nothing is asked.
    again = tbx("server", "add", "local", "--url", server.url, "--name", "vendor-2")
    assert again.exit_code == 0 and "asks for sign-in" not in again.stdout, again.stderr


def test_a_hosted_catalog_entry_uses_the_sign_in_or_says_how(
        tbx, tbx_home, memory_keyring, docker_engine, provider: LocalOAuthProvider,  # noqa: ANN001
        server: ProtectedMcpServer) -> None:
    """The console adds catalog servers through ``servers.add_server``: a hosted one behind
    MCP authorization says how to sign in, and once signed in ('tbx server login URL') is
    added carrying that sign-in."""
    import pytest

    from console.catalog import load_catalog
    from console.errors import UsageError
    from console.services import servers

    provider.mcp.cimd = False
    assert tbx("init").exit_code == 0
    assert tbx("toolbox", "add", "local", "--local").exit_code == 0
    ws = Workspace.open(tbx_home)
    hosted = load_catalog(ws.paths).get("github-hosted")
    entry = hosted.model_copy(update={"source": hosted.source.model_copy(update={
        "remote": hosted.source.remote.model_copy(update={"url": server.url})})})  # type: ignore[union-attr]
    with pytest.raises(UsageError, match=r"asks for sign-in .*'tbx server login "):
        servers.add_server(ws, "local", entry, name="vendor")
    assert ws.repos.servers.by_name(ws.repos.toolboxes.require("local").id, "vendor") is None
    threading.Thread(target=approve_when_asked, args=(provider,), daemon=True).start()
    assert tbx("server", "login", server.url, "--device").exit_code == 0
    ws.refresh()
    added = servers.add_server(ws, "local", entry, name="vendor")
    assert added.connection is not None
    assert [tool.name for tool in ws.repos.tools.of_server(added.id)] == ["echo"]
