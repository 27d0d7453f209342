"""A remote MCP server, or its authorization server, that lies to tbx's sign-in.

The hostile side is a canned HTTP server on 127.0.0.1 (any status, headers and bytes)
or the test provider's MCP authorization server with a misbehaving knob turned. Each
case must end in a refusal that says what was wrong, with nothing kept in the vault and
no secret of the sign-in in the message.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from console.oauth.client import OAuthFlowError
from console.oauth.mcp_discovery import DiscoveryError
from console.services.mcp_sign_in import MCP, sign_in
from console.workspace import Workspace
from tests.support.browser import HeadlessChromium
from tests.support.canned_http import Canned, CannedHttp
from tests.support.mcp_protected import ProtectedMcpServer
from tests.support.oauth_provider import LocalOAuthProvider
from tests.support.oauth_provider.routes_mcp import McpSettings


@pytest.fixture(scope="module")
def provider() -> Iterator[LocalOAuthProvider]:
    with LocalOAuthProvider() as running:
        yield running


@pytest.fixture
def hostile() -> Iterator[CannedHttp]:
    with CannedHttp() as host:
        yield host


def arrange(host: CannedHttp, prm: Any = None, asm: Any = None, www: str | None = None) -> str:
    """A server at host/mcp whose 401 points at host/prm, naming host as its authorization
    server; ``prm`` and ``asm`` replace the honest documents (a Canned answer, or a dict)."""
    url = host.base + "/mcp"
    host.put("/mcp", Canned(401, b"", {"WWW-Authenticate": www or f'Bearer resource_metadata="{host.base}/prm"'}),
             method="POST")
    honest_prm = {"resource": url, "authorization_servers": [host.base], "scopes_supported": ["mcp:tools"]}
    honest_asm = {"issuer": host.base, "authorization_endpoint": host.base + "/authorize",
                  "token_endpoint": host.base + "/token", "registration_endpoint": host.base + "/register",
                  "code_challenge_methods_supported": ["S256"], "response_types_supported": ["code"]}
    for path, given, honest in (("/prm", prm, honest_prm),
                                ("/.well-known/oauth-authorization-server", asm, honest_asm)):
        host.put(path, given if isinstance(given, Canned) else Canned.json(given if given is not None else honest))
    return url


async def refused(ws: Workspace, url: str, match: str, kind: type[Exception] = DiscoveryError) -> str:
    ws.settings.oauth.browser_timeout = 3  # a sign-in let through by mistake ends soon, in a FlowTimeout
    with pytest.raises(kind, match=match) as caught:
        await sign_in(ws, url, device=False, open_browser=lambda _u: False)
    assert [c for c in ws.repos.connections if c.provider == MCP] == []
    assert [a for a in ws.repos.oauth_apps if a.provider == MCP] == []
    return str(caught.value)


async def test_oversized_protected_resource_metadata(workspace: Workspace, hostile: CannedHttp) -> None:
    url = arrange(hostile, prm=Canned(200, b'{"resource": "' + b"a" * (1 << 20) + b'"}'))
    await refused(workspace, url, "larger than 64 KiB")


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"resource": 5}', b'{"authorization_servers": []}',
                                  b"\xff\xfe\x00garbage"])
async def test_malformed_protected_resource_metadata(workspace: Workspace, hostile: CannedHttp, body: bytes) -> None:
    url = arrange(hostile, prm=Canned(200, body))
    await refused(workspace, url, "malformed|not a JSON object")


async def test_metadata_about_another_resource(workspace: Workspace, hostile: CannedHttp) -> None:
    url = arrange(hostile, prm={"resource": "https://mcp.example.com/mcp", "authorization_servers": [hostile.base]})
    await refused(workspace, url, "describes https://mcp.example.com/mcp")


async def test_resource_metadata_url_over_plain_http_elsewhere(workspace: Workspace, hostile: CannedHttp) -> None:
    url = arrange(hostile, www='Bearer resource_metadata="http://mcp.example.com/prm"')
    await refused(workspace, url, "not https://")


async def test_authorization_server_over_plain_http_elsewhere(workspace: Workspace, hostile: CannedHttp) -> None:
    url = arrange(hostile, prm={"resource": hostile.base + "/mcp", "authorization_servers": ["http://as.example.com"]})
    await refused(workspace, url, "not https://")


@pytest.mark.parametrize("endpoint", ["authorization_endpoint", "token_endpoint", "registration_endpoint",
                                      "revocation_endpoint", "device_authorization_endpoint"])
async def test_metadata_pointing_at_plain_http_endpoints(workspace: Workspace, hostile: CannedHttp,
                                                         endpoint: str) -> None:
    url = arrange(hostile)
    honest = {"issuer": hostile.base, "authorization_endpoint": hostile.base + "/authorize",
              "token_endpoint": hostile.base + "/token", "code_challenge_methods_supported": ["S256"]}
    arrange(hostile, asm={**honest, endpoint: "http://as.example.com/steal"})
    await refused(workspace, url, f"{endpoint} 'http://as.example.com/steal' is not https")


async def test_hostile_strings_are_cut_and_escaped_in_the_refusal(workspace: Workspace, hostile: CannedHttp) -> None:
    url = arrange(hostile)
    honest = {"issuer": hostile.base, "authorization_endpoint": hostile.base + "/authorize",
              "token_endpoint": hostile.base + "/token", "code_challenge_methods_supported": ["S256"]}
    arrange(hostile, asm={**honest, "token_endpoint": "http://evil.example/\x1b]0;pwned\x07" + "A" * 50_000})
    message = await refused(workspace, url, "not https")
    assert len(message) < 600 and "\x1b" not in message
    arrange(hostile, asm={**honest, "issuer": "https://honest.example/" + "B" * 50_000})
    message = await refused(workspace, url, "RFC 8414")
    assert len(message) < 600


async def test_oversized_or_malformed_authorization_server_metadata(workspace: Workspace, hostile: CannedHttp) -> None:
    url = arrange(hostile, asm=Canned(200, b" " * (70 * 1024) + b"{}"))
    await refused(workspace, url, "larger than 64 KiB")
    arrange(hostile, asm={"issuer": hostile.base, "token_endpoint": 7})
    await refused(workspace, url, "malformed")


async def test_metadata_for_another_issuer(workspace: Workspace, hostile: CannedHttp) -> None:
    url = arrange(hostile, asm={"issuer": "https://honest.example", "authorization_endpoint": "https://honest.example/a",
                                "token_endpoint": "https://honest.example/t", "code_challenge_methods_supported": ["S256"]})
    await refused(workspace, url, "RFC 8414")


async def test_no_pkce_s256(workspace: Workspace, hostile: CannedHttp) -> None:
    url = arrange(hostile, asm={"issuer": hostile.base, "authorization_endpoint": hostile.base + "/a",
                                "token_endpoint": hostile.base + "/t", "code_challenge_methods_supported": ["plain"]})
    await refused(workspace, url, "S256")


async def test_metadata_server_error(workspace: Workspace, hostile: CannedHttp) -> None:
    url = arrange(hostile, asm=Canned(503, b"down"))
    await refused(workspace, url, "try again later")


@pytest.mark.parametrize("answer", [
    Canned.json({"client_id": "c1", "redirect_uris": ["http://127.0.0.1:1/another-client"],
                 "token_endpoint_auth_method": "none"}, 201),
    Canned.json({"client_id": "c1", "redirect_uris": ["https://attacker.example/cb"],
                 "token_endpoint_auth_method": "none"}, 201),
    Canned.json({"client_id": "c1", "token_endpoint_auth_method": "private_key_jwt"}, 201),
    Canned.json({"client_id": "c1", "token_endpoint_auth_method": "client_secret_basic"}, 201),
    Canned(201, b"{" * 100_000),
    Canned.json({"error": "invalid_client_metadata"}, 400),
])
async def test_registration_answers_tbx_cannot_use(workspace: Workspace, hostile: CannedHttp, answer: Canned) -> None:
    url = arrange(hostile)
    hostile.put("/register", answer, method="POST")
    await refused(workspace, url, "register|registration|registered|larger than")


async def test_registration_for_another_clients_redirect_uris_at_a_real_server(
        workspace: Workspace, provider: LocalOAuthProvider, browser: HeadlessChromium) -> None:
    provider.mcp = McpSettings(cimd=False, registered_redirects=["http://127.0.0.1:9/someone-else"])
    with ProtectedMcpServer(provider) as server:
        message = await refused(workspace, server.url, "other redirect URIs")
    assert browser.opened == []  # refused before any browser was sent anywhere
    assert "someone-else" not in message


async def test_token_endpoint_that_echoes_the_code_verifier(
        workspace: Workspace, provider: LocalOAuthProvider, browser: HeadlessChromium) -> None:
    provider.mcp = McpSettings(cimd=False, echo_verifier=True)
    with ProtectedMcpServer(provider) as server, pytest.raises(OAuthFlowError, match="own secret") as caught:
        await sign_in(workspace, server.url, device=False, open_browser=browser)
    [verifier] = provider.mcp.echoed
    assert len(verifier) >= 43 and verifier not in str(caught.value)
    assert [c for c in workspace.repos.connections if c.provider == MCP] == []


async def test_unsolicited_redirects_are_not_followed(workspace: Workspace, hostile: CannedHttp) -> None:
    """Metadata answered with a redirect to another host is not fetched from there."""
    url = arrange(hostile, prm=Canned(302, b"", {"Location": "https://attacker.example/prm"}))
    await refused(workspace, url, "publishes no protected resource metadata")
    assert all(path.startswith(("/mcp", "/prm", "/.well-known")) for _m, path, _b in hostile.seen)


async def test_a_signed_in_server_cannot_steer_the_gateway_with_its_401s(
        workspace: Workspace, provider: LocalOAuthProvider, hostile: CannedHttp) -> None:
    """Once signed in, a server's 401 naming other metadata or scopes is not followed: the
    token is refreshed once, then the user is asked to sign in; nothing is fetched elsewhere."""
    import httpx2

    from console.services.upstream_auth import SignInRequired, UpstreamAuth

    provider.mcp = McpSettings(cimd=False)
    url = hostile.base + "/mcp"
    hostile.put("/mcp", Canned(401, b"", {"WWW-Authenticate": f'Bearer resource_metadata="{hostile.base}/prm"'}),
                method="POST")
    hostile.put("/prm", Canned.json({"resource": url, "authorization_servers": [provider.base + "/mcp-as"]}))
    connection = await sign_in(workspace, url, device=True, open_browser=lambda _u: False,
                               show_code=lambda grant: provider.approve_device(grant.user_code))
    with CannedHttp() as attacker:
        hostile.put("/mcp", Canned(401, b"", {"WWW-Authenticate": f'Bearer resource_metadata="{attacker.base}/prm", '
                                                                  'scope="admin"'}), method="POST")
        hostile.seen.clear()
        async with httpx2.AsyncClient(auth=UpstreamAuth(workspace, connection.id), timeout=15) as http:
            with pytest.raises(SignInRequired):
                await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert attacker.seen == []
    assert [(m, p) for m, p, _b in hostile.seen] == [("POST", "/mcp"), ("POST", "/mcp")]
