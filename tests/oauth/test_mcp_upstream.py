"""Signing the gateway in to a remote MCP server's authorization, and calling it with the tokens.

The server is the mcp SDK's own resource server (tests/support/mcp_protected.py) behind
the test provider's /mcp-as authorization server; the user's browser is headless
Chromium; the client calling the server is the SDK's Streamable HTTP client with
``UpstreamAuth`` as its httpx2 auth.
"""

from __future__ import annotations

import asyncio
import httpx2
import pytest

from console.errors import UsageError
from console.model import ConnectionStatus
from console.oauth.client import IssuerMismatch, StateMismatch
from console.oauth.mcp_discovery import DiscoveryError
from console.oauth.mcp_registration import client_metadata
from console.services.mcp_sign_in import MCP, sign_in
from console.services.upstream_auth import SignInRequired, UpstreamAuth
from console.services import connections as svc
from console.services.connection_tokens import token_set
from console.workspace import Workspace
from tests.support.browser import HeadlessChromium
from tests.support.canned_http import Canned, CannedHttp
from tests.support.mcp_protected import ProtectedMcpServer
from tests.support.oauth_provider import LocalOAuthProvider
from tests.support.oauth_provider.routes_mcp import McpSettings


async def call_echo(ws: Workspace, connection_id: str, url: str, text: str = "hi") -> str:
    """One tool call through the SDK's client, authorized by ``UpstreamAuth``."""
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with httpx2.AsyncClient(auth=UpstreamAuth(ws, connection_id), timeout=15) as http, \
            streamable_http_client(url, http_client=http) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool("echo", {"text": text})
        return result.content[0].text  # type: ignore[union-attr]


async def browser_sign_in(ws: Workspace, url: str, browser: HeadlessChromium, **extra: object):  # noqa: ANN201
    connection = await sign_in(ws, url, device=False, open_browser=browser, **extra)  # type: ignore[arg-type]
    return connection


async def dcr_sign_in(ws: Workspace, provider: LocalOAuthProvider, server: ProtectedMcpServer,
                      browser: HeadlessChromium):  # noqa: ANN201
    """Signed in by dynamic registration (the provider takes no metadata documents)."""
    provider.mcp.cimd = False
    return await browser_sign_in(ws, server.url, browser)


async def device_sign_in(ws: Workspace, provider: LocalOAuthProvider, server: ProtectedMcpServer):  # noqa: ANN201
    """Signed in by device code, the user approving at once on the provider's page."""
    return await sign_in(ws, server.url, device=True, open_browser=lambda _u: False,
                         show_code=lambda grant: provider.approve_device(grant.user_code))


async def test_dcr_sign_in_in_chromium_then_calls_carry_the_resource_token(
        workspace: Workspace, provider: LocalOAuthProvider, server: ProtectedMcpServer,
        browser: HeadlessChromium) -> None:
    connection = await dcr_sign_in(workspace, provider, server, browser)
    assert "You can close this tab" in browser.wait()
    assert (connection.provider, connection.account) == (MCP, server.url)
    assert "mcp:tools" in connection.scopes
    # one registration, with our loopback redirect; resource on the authorize and token requests
    assert len(provider.mcp.registrations) == 1
    assert provider.mcp.registrations[0]["redirect_uris"][0].startswith("http://127.0.0.1:")
    assert provider.mcp.resources_asked == [server.url, server.url]
    opened = browser.opened[-1]
    assert "code_challenge_method=S256" in opened and "resource=" in opened
    tokens = token_set(workspace, connection)
    assert provider.mcp.audience[tokens.access_token] == server.url
    assert await call_echo(workspace, connection.id, server.url) == "echo: hi"
    assert server.authorizations[0] is None  # the sign-in's first request, which got the 401
    assert set(server.authorizations[1:]) == {f"Bearer {tokens.access_token}"}
    svc.describe(connection)  # the Connections screen's row


async def test_client_id_metadata_document_is_preferred_where_offered(
        workspace: Workspace, provider: LocalOAuthProvider, server: ProtectedMcpServer,
        browser: HeadlessChromium) -> None:
    with CannedHttp() as host:
        url = host.base + "/tbx/client.json"
        host.put("/tbx/client.json", Canned.json(client_metadata("http://127.0.0.1/callback", url)))
        connection = await browser_sign_in(workspace, server.url, browser, client_metadata_url=url)
    assert provider.mcp.registrations == []
    assert provider.mcp.metadata_documents == [url]
    app = workspace.repos.oauth_apps.get(connection.app or "")
    assert app is not None and app.client_id == url
    assert await call_echo(workspace, connection.id, server.url) == "echo: hi"


async def test_pre_registered_client_id_when_the_server_offers_no_registration(
        workspace: Workspace, provider: LocalOAuthProvider, server: ProtectedMcpServer,
        browser: HeadlessChromium) -> None:
    provider.mcp.cimd = provider.mcp.dcr = False
    with pytest.raises(DiscoveryError, match="--client-id"):
        await browser_sign_in(workspace, server.url, browser)
    provider.register_client("hand-made", None, ["mcp:tools"])
    connection = await browser_sign_in(workspace, server.url, browser, client_id="hand-made")
    assert await call_echo(workspace, connection.id, server.url) == "echo: hi"


async def test_device_sign_in(workspace: Workspace, provider: LocalOAuthProvider,
                              server: ProtectedMcpServer) -> None:
    provider.mcp.cimd = False
    connection = await device_sign_in(workspace, provider, server)
    assert await call_echo(workspace, connection.id, server.url) == "echo: hi"


async def test_twenty_callers_with_an_expired_token_refresh_once_and_rotation_is_kept(
        workspace: Workspace, provider: LocalOAuthProvider, server: ProtectedMcpServer,
        browser: HeadlessChromium) -> None:
    connection = await dcr_sign_in(workspace, provider, server, browser)
    before = token_set(workspace, connection)
    provider.expire_access_tokens()
    provider.refresh_delay = 0.3  # the refresh is slow: the others surely arrive while it runs
    provider.requests.clear()
    auth = UpstreamAuth(workspace, connection.id)
    async with httpx2.AsyncClient(auth=auth, timeout=15) as http:
        async def ping() -> int:
            answer = await http.post(server.url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                                     headers={"Accept": "application/json, text/event-stream",
                                              "MCP-Protocol-Version": "2025-06-18"})
            return answer.status_code

        statuses = await asyncio.gather(*(ping() for _ in range(20)))
    assert 401 not in statuses
    assert provider.requests["refresh"] == 1
    after = token_set(workspace, connection)
    assert after.access_token != before.access_token
    assert after.refresh_token not in (None, before.refresh_token)  # rotated, and the new one kept
    assert before.refresh_token not in provider.live_refresh_tokens


async def test_a_revoked_grant_asks_to_sign_in_again(
        workspace: Workspace, provider: LocalOAuthProvider, server: ProtectedMcpServer,
        browser: HeadlessChromium) -> None:
    connection = await dcr_sign_in(workspace, provider, server, browser)
    assert await call_echo(workspace, connection.id, server.url) == "echo: hi"
    tokens = token_set(workspace, connection)
    with provider.store.lock:
        provider.store.kill_family(provider.store.by_access(tokens.access_token, "mcp").family)  # type: ignore[union-attr]
    with pytest.raises(Exception) as caught:
        await call_echo(workspace, connection.id, server.url)
    assert _root(caught.value, SignInRequired)
    assert f"tbx server login {server.url}" in str(_root(caught.value, SignInRequired))
    workspace.refresh()
    assert workspace.repos.connections.get(connection.id).status is ConnectionStatus.NEEDS_CONSENT  # type: ignore[union-attr]


async def test_a_401_after_a_refresh_stops_with_sign_in_again(
        workspace: Workspace, provider: LocalOAuthProvider, server: ProtectedMcpServer,
        browser: HeadlessChromium) -> None:
    connection = await dcr_sign_in(workspace, provider, server, browser)
    server.refuse_all = True
    provider.requests.clear()
    server.authorizations.clear()
    auth = UpstreamAuth(workspace, connection.id)
    async with httpx2.AsyncClient(auth=auth, timeout=15) as http:
        with pytest.raises(SignInRequired, match="tbx server login"):
            await http.post(server.url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert provider.requests["refresh"] == 1  # refreshed once, then gave up
    assert len(server.authorizations) == 2
    # a server that keeps refusing does not make every later call a refresh: it waits for a sign-in
    async with httpx2.AsyncClient(auth=UpstreamAuth(workspace, connection.id), timeout=15) as http:
        for _ in range(5):
            with pytest.raises(SignInRequired):
                await http.post(server.url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert provider.requests["refresh"] == 1 and len(server.authorizations) == 2


async def test_agent_authorization_is_replaced_and_the_token_stays_on_its_origin(
        workspace: Workspace, provider: LocalOAuthProvider, server: ProtectedMcpServer,
        browser: HeadlessChromium) -> None:
    connection = await dcr_sign_in(workspace, provider, server, browser)
    tokens = token_set(workspace, connection)
    server.authorizations.clear()
    async with httpx2.AsyncClient(auth=UpstreamAuth(workspace, connection.id), timeout=15) as http:
        await http.post(server.url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                        headers={"Authorization": "Bearer agent-token-canary"})
        with CannedHttp() as elsewhere:
            with pytest.raises(Exception, match="refusing to send the token"):
                await http.get(elsewhere.base + "/mcp")
            assert elsewhere.seen == []
    assert server.authorizations == [f"Bearer {tokens.access_token}"]


async def test_removal_revokes_at_the_authorization_server(
        workspace: Workspace, provider: LocalOAuthProvider, server: ProtectedMcpServer,
        browser: HeadlessChromium) -> None:
    connection = await dcr_sign_in(workspace, provider, server, browser)
    tokens = token_set(workspace, connection)
    assert svc.remove(workspace, connection.id) is True
    assert tokens.refresh_token in provider.revoked_tokens
    assert workspace.repos.oauth_apps.get(connection.app or "") is None
    with pytest.raises(UsageError, match="tbx server login"):
        svc.add_connection(workspace, MCP, None, svc.SignIn())


async def test_signing_in_again_keeps_one_connection(
        workspace: Workspace, provider: LocalOAuthProvider, server: ProtectedMcpServer,
        browser: HeadlessChromium) -> None:
    provider.mcp.cimd = False
    first = await browser_sign_in(workspace, server.url, browser)
    second = await browser_sign_in(workspace, server.url, browser)
    assert first.id == second.id
    assert [c.id for c in workspace.repos.connections if c.provider == MCP] == [first.id]
    assert [a for a in workspace.repos.oauth_apps if a.provider == MCP] == [workspace.repos.oauth_apps.get(second.app or "")]


@pytest.mark.parametrize("iss", ["wrong", "omit"])
async def test_a_redirect_with_a_bad_iss_is_refused(
        workspace: Workspace, provider: LocalOAuthProvider, server: ProtectedMcpServer,
        browser: HeadlessChromium, iss: str) -> None:
    provider.mcp.cimd, provider.mcp.iss = False, iss
    provider.requests.clear()
    with pytest.raises(IssuerMismatch, match="RFC 9207"):
        await browser_sign_in(workspace, server.url, browser)
    assert provider.requests["code"] == 0  # the code never reached the token endpoint
    assert [c for c in workspace.repos.connections if c.provider == MCP] == []


async def test_a_redirect_with_another_state_is_refused(
        workspace: Workspace, provider: LocalOAuthProvider, server: ProtectedMcpServer) -> None:
    provider.mcp.cimd = False
    provider.requests.clear()

    def forged(url: str) -> bool:
        """An attacker's page sends the browser to our loopback with its own code and state."""
        from urllib.parse import parse_qs, urlsplit

        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        httpx2.get(f"{redirect}?code=attacker-code&state=not-ours", timeout=5)
        return True

    with pytest.raises(StateMismatch):
        await sign_in(workspace, server.url, device=False, open_browser=forged)
    assert provider.requests["code"] == 0


async def test_an_authorization_server_elsewhere_that_does_not_list_the_resource_is_refused(
        workspace: Workspace, provider: LocalOAuthProvider, server: ProtectedMcpServer) -> None:
    provider.mcp.protected_resources = ["http://127.0.0.1:1/another-resource"]
    workspace.settings.oauth.browser_timeout = 3  # let through by mistake, it would end in a FlowTimeout
    with pytest.raises(DiscoveryError, match="does not list it"):
        await sign_in(workspace, server.url, device=False, open_browser=lambda _u: False)
    provider.mcp.protected_resources = [server.url]
    provider.mcp.cimd = False
    connection = await device_sign_in(workspace, provider, server)
    assert await call_echo(workspace, connection.id, server.url) == "echo: hi"


def _root(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The ``kind`` inside an exception group or cause chain (the SDK's task groups wrap it)."""
    stack = [exc]
    while stack:
        found = stack.pop()
        if isinstance(found, kind):
            return found
        stack += list(getattr(found, "exceptions", ()))
        for linked in (found.__cause__, found.__context__):
            if linked is not None:
                stack.append(linked)
    return None



@pytest.mark.parametrize(("challenge", "asked"), [
    (' scope="mcp:read"', ["mcp:read", "offline_access"]),  # the 401's scope first
    ("", ["mcp:tools", "mcp:admin", "offline_access"]),  # else the resource's scopes_supported
])
async def test_scope_comes_from_the_401_then_the_resource_metadata(
        workspace: Workspace, provider: LocalOAuthProvider, challenge: str, asked: list[str]) -> None:
    from urllib.parse import parse_qs, urlsplit

    from console.oauth.client import FlowTimeout

    provider.mcp = McpSettings(cimd=False)
    workspace.settings.oauth.browser_timeout = 1
    opened: list[str] = []
    with CannedHttp() as host:
        host.put("/mcp", Canned(401, b"", {"WWW-Authenticate": f'Bearer resource_metadata="{host.base}/prm",{challenge}'}),
                 method="POST")
        host.put("/prm", Canned.json({"resource": host.base + "/mcp", "scopes_supported": ["mcp:tools", "mcp:admin"],
                                      "authorization_servers": [provider.base + "/mcp-as"]}))
        with pytest.raises(FlowTimeout):
            await sign_in(workspace, host.base + "/mcp", device=False, open_browser=opened.append)  # type: ignore[arg-type]
    query = parse_qs(urlsplit(opened[0]).query)
    assert query["scope"][0].split() == asked
    assert query["resource"] == [host.base + "/mcp"]


async def test_through_the_remote_server_transport_seam(
        workspace: Workspace, provider: LocalOAuthProvider, server: ProtectedMcpServer,
        browser: HeadlessChromium) -> None:
    """Part A's transport takes an ``httpx2.Auth`` behind its static headers: a session over it
    lists and calls tools, and a sign-in that has gone bad ends the session with what to do."""
    from console.runtime.remote_session import HeaderAuth, RemoteTarget, remote_mcp_session

    connection = await dcr_sign_in(workspace, provider, server, browser)
    target = RemoteTarget(server.url, "streamable-http", HeaderAuth({"X-Static": "1"}, UpstreamAuth(workspace,
                                                                                                   connection.id)))
    async with remote_mcp_session(target, timeout=15) as session:
        assert "echo" in [tool["name"] for tool in (await session.discover()).tools]
        assert "echo: via the seam" in str(await session.call_tool("echo", {"text": "via the seam"}))
    server.refuse_all = True
    with pytest.raises(Exception, match="tbx server login"):
        async with remote_mcp_session(target, timeout=15) as session:
            await session.discover()
