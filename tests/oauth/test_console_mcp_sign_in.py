"""The console signs in to a remote server's MCP authorization itself (issue 21): the add
dialog's "Remote server (URL)" meets the server's 401 and opens the sign-in, by device
code or in the browser (real headless Chromium on the address the console shows); the
connection is kept and bound, the server added and discovered, and an agent's call
through the gateway reaches it with the connection's token, never the agent's. Cancel
leaves nothing behind; ``i`` on Servers signs a server in again after a revocation.

The server is the SDK's own resource server on 127.0.0.1 (tests/support/mcp_protected.py)
behind the test provider's MCP authorization server."""

from __future__ import annotations

import asyncio
import time

import pytest
from textual.pilot import Pilot
from textual.widgets import RadioButton, Static

from console.services import agents, grants
from console.services.connection_tokens import token_set
from console.services.connections import SignIn
from console.services.grants import Target
from console.services.mcp_sign_in import MCP
from console.services.remote_sign_in import sign_in_with
from console.services.tools import approve
from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.modals.mcp_sign_in import McpSignInModal, loopback_port
from console.tui.screens.servers import ServersScreen
from console.tui.widgets.activity_log import ActivityLog
from console.tui.widgets.server_table import ServerTable
from console.workspace import Workspace
from tests.support.browser import HeadlessChromium
from tests.support.console_sign_in import add_remote, sign_in_by_device
from tests.support.gateway import RunningGateway, agent
from tests.support.mcp_protected import ProtectedMcpServer
from tests.support.oauth_provider import LocalOAuthProvider
from tests.tui import test_servers_screen as servers_screen
from tests.tui.conftest import test_keyring  # noqa: F401 - engine_backend's fixture

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]
engine_backend = servers_screen.engine_backend
until = servers_screen.until
AGENT_CANARY = "agent-token-canary"


async def adding_by_device(pilot: Pilot, url: str) -> tuple[ServersScreen, McpSignInModal, str]:
    """On Servers, "vendor" added at ``url``, signing in by device code: the code shown."""
    screen = await servers_screen.open_servers(pilot)
    modal = await add_remote(pilot, "vendor", url)
    return screen, modal, await sign_in_by_device(pilot, modal)


def vendor(ws: Workspace, name: str = "vendor"):  # noqa: ANN201
    ws.refresh()
    return ws.repos.servers.by_name(ws.repos.toolboxes.require("local").id, name)


async def an_agent_calls_it(backend: Backend, server: ProtectedMcpServer, name: str) -> str:
    """Approved and granted, the tool is called by an SDK agent through the gateway;
    returns what the server was sent as the connection's token."""
    ws = backend.workspace
    ws.refresh()
    added = vendor(ws, name)
    upstream = token_set(ws, ws.repos.connections.get(added.connection)).access_token  # type: ignore[arg-type]
    approve(ws, "local", name)
    _agent, token = agents.add_agent(ws, f"{name}-agent")
    grants.grant(ws, f"{name}-agent", Target.parse("local"))
    grants.grant(ws, f"{name}-agent", Target.parse(f"local/{name}"))
    server.authorizations.clear()
    gateway = RunningGateway(backend.paths).start()
    try:
        async with agent(gateway.url, token) as client:
            said = (await client.call_tool(f"{name}__echo", {"text": "through"})).model_dump_json()
    finally:
        gateway.stop()
    assert "echo: through" in said and upstream not in said
    assert server.authorizations and set(server.authorizations) == {f"Bearer {upstream}"}
    assert not any(token in value for value in server.authorizations if value)
    return upstream


async def test_add_meets_the_401_and_signs_in_by_device_code(
        engine_backend: Backend, provider: LocalOAuthProvider, server: ProtectedMcpServer) -> None:
    provider.mcp.cimd = False  # dynamic registration: the test has no https metadata document
    ws = engine_backend.workspace
    app = ConsoleApp(engine_backend)
    async with app.run_test(size=servers_screen.SIZE) as pilot:
        screen = await servers_screen.open_servers(pilot)
        modal = await add_remote(pilot, "vendor", server.url)
        await until(pilot, lambda: "asks for sign-in" in servers_screen.screen_text(app), 10, "the modal drawn")
        assert "vendor" in screen.adding, "the row being added waits for the sign-in"
        code = await sign_in_by_device(pilot, modal)
        assert vendor(ws) is None, "nothing is added before the sign-in"
        provider.approve_device(code)
        await until(pilot, lambda: app.screen is screen, 30, "the sign-in to finish")
        await until(pilot, lambda: vendor(ws) is not None, 30, "the server to be added")
        await until(pilot, lambda: "vendor" not in screen.adding, 30, "the add to finish")
        added = vendor(ws)
        connection = ws.repos.connections.get(added.connection)
        assert connection is not None and (connection.provider, connection.account) == (MCP, server.url)
        assert [t.name for t in ws.repos.tools.of_server(added.id)] == ["echo"]
        upstream = token_set(ws, connection).access_token
        assert upstream not in servers_screen.screen_text(app)
        await pilot.press("8")  # the Connections screen lists the sign-in
        await until(pilot, lambda: server.url in servers_screen.screen_text(app), 10, "the connection listed")
    await an_agent_calls_it(engine_backend, server, "vendor")


async def test_add_signs_in_in_the_browser_from_the_address_shown(
        engine_backend: Backend, provider: LocalOAuthProvider, server: ProtectedMcpServer,
        browser: HeadlessChromium) -> None:
    provider.mcp.cimd = False
    ws = engine_backend.workspace
    app = ConsoleApp(engine_backend)
    async with app.run_test(size=servers_screen.SIZE) as pilot:
        screen = await servers_screen.open_servers(pilot)
        screen.opener = lambda _url: False  # no browser on this machine: the address is shown
        modal = await add_remote(pilot, "vendor", server.url)
        assert modal.query_one("#browser", RadioButton).value
        await pilot.press("ctrl+s")  # Sign in
        shown = modal.query_one("#url", Static)
        await until(pilot, lambda: str(shown.render()).startswith("http"), 30, "the sign-in address")
        address = str(shown.render())
        assert "code_challenge=" in address and "resource=" in address
        port = loopback_port(address)
        assert f"'ssh -L {port}:127.0.0.1:{port}'" in str(modal.query_one("#browser-waiting", Static).render()), \
            "the way from a browser on another machine"
        await pilot.press("c")
        assert app.clipboard == address, "c copies the address, for a browser elsewhere"
        browser.open(address)  # the user opens what the console printed
        await until(pilot, lambda: app.screen is screen, 30, "the browser sign-in to finish")
        assert "You can close this tab" in browser.wait()
        await until(pilot, lambda: vendor(ws) is not None and "vendor" not in screen.adding, 30, "the add")
        assert vendor(ws).connection is not None
    await an_agent_calls_it(engine_backend, server, "vendor")


async def test_cancel_stops_the_sign_in_and_adds_nothing(
        engine_backend: Backend, provider: LocalOAuthProvider, server: ProtectedMcpServer) -> None:
    provider.mcp.cimd = False
    ws = engine_backend.workspace
    app = ConsoleApp(engine_backend)
    async with app.run_test(size=servers_screen.SIZE) as pilot:
        screen, _modal, code = await adding_by_device(pilot, server.url)
        await pilot.click("#cancel")
        await until(pilot, lambda: app.screen is screen, 10, "the modal to close")
        await until(pilot, lambda: not screen.adding, 10, "the pending row to go")
        await until(pilot, lambda: "sign-in cancelled; nothing added" in servers_screen.screen_text(app), 10,
                    "the activity to say so")
        # Textual calls a closed modal's thread worker cancelled at once, running or not: what
        # counts is that the polls stop (a poll a second here) and a late approval keeps nothing.
        time.sleep(provider.device_interval + 0.5)
        polls = provider.requests["device_poll"]
        provider.approve_device(code)
        time.sleep(3 * provider.device_interval)
        assert provider.requests["device_poll"] == polls
        ws.refresh()
        assert vendor(ws) is None
        assert [c for c in ws.repos.connections if c.provider == MCP] == []
        assert server.url not in str(screen.query_one(ServerTable).rows)


async def test_i_signs_a_revoked_server_in_again(
        engine_backend: Backend, provider: LocalOAuthProvider, server: ProtectedMcpServer) -> None:
    provider.mcp.cimd = False
    ws = engine_backend.workspace
    app = ConsoleApp(engine_backend)
    async with app.run_test(size=servers_screen.SIZE) as pilot:
        screen, _modal, code = await adding_by_device(pilot, server.url)
        provider.approve_device(code)
        await until(pilot, lambda: vendor(ws) is not None and "vendor" not in screen.adding, 30, "the add")
        before = token_set(ws, ws.repos.connections.get(vendor(ws).connection))  # type: ignore[arg-type]
        with provider.store.lock:
            provider.store.kill_family(provider.store.by_access(before.access_token, "mcp").family)  # type: ignore[union-attr]
        servers_screen.select(screen, "vendor")
        shown = lambda: servers_screen.screen_text(app)  # noqa: E731
        await until(pilot, lambda: "i Sign in" in shown(), 10, "the footer to offer i on a remote server")
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, McpSignInModal), 10, "the sign-in modal")
        modal = app.screen
        await until(pilot, lambda: "Sign in again to local/vendor" in shown(), 10, "the modal drawn")
        provider.approve_device(await sign_in_by_device(pilot, modal))  # type: ignore[arg-type]
        await until(pilot, lambda: app.screen is screen, 30, "the sign-in to finish")
        log = screen.query_one(ActivityLog)  # read, not the screen: it hides a while after the work
        await until(pilot, lambda: any("connected again" in line for line in log.lines), 30,
                    "the server to connect again with the new sign-in")
        assert not screen.busy
    ws.refresh()
    again = vendor(ws)
    assert [c.id for c in ws.repos.connections if c.provider == MCP] == [again.connection], "one connection"
    after = await an_agent_calls_it(engine_backend, server, "vendor")
    assert after != before.access_token


async def test_an_add_whose_kept_sign_in_was_revoked_signs_in_again(
        engine_backend: Backend, provider: LocalOAuthProvider, server: ProtectedMcpServer) -> None:
    """A sign-in kept from before ('tbx server login URL') that the server now refuses does
    not fail the add with a command to run elsewhere: the console signs in again, in place."""
    provider.mcp.cimd = False
    ws = engine_backend.workspace
    kept, _new = await asyncio.to_thread(sign_in_with, ws, server.url, SignIn(
        device=True, show_code=lambda grant: provider.approve_device(grant.user_code)))
    before = token_set(ws, kept)
    with provider.store.lock:
        provider.store.kill_family(provider.store.by_access(before.access_token, "mcp").family)  # type: ignore[union-attr]
    app = ConsoleApp(engine_backend)
    async with app.run_test(size=servers_screen.SIZE) as pilot:
        screen, _modal, code = await adding_by_device(pilot, server.url)
        provider.approve_device(code)
        await until(pilot, lambda: vendor(ws) is not None and "vendor" not in screen.adding, 30, "the add")
    assert [c.id for c in ws.repos.connections if c.provider == MCP] == [kept.id] == [vendor(ws).connection]
    assert await an_agent_calls_it(engine_backend, server, "vendor") != before.access_token
