"""``tbx server login`` as a script sees it: a device sign-in to a remote MCP server's authorization."""

from __future__ import annotations

import json
import threading
import time

from console.services.mcp_sign_in import MCP
from console.services.connection_tokens import token_set
from console.workspace import Workspace
from tests.support.mcp_protected import ProtectedMcpServer
from tests.support.oauth_provider import LocalOAuthProvider


def approve_when_asked(provider: LocalOAuthProvider, seconds: float = 20) -> None:
    """The user at the other device: approves the first MCP device code that shows up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with provider.store.lock:
            pending = [d.user_code for d in provider.store.devices.values() if d.shape == "mcp" and not d.decision]
        if pending:
            provider.approve_device(pending[0])
            return
        time.sleep(0.05)


def test_tbx_server_login_by_device_code(tbx, tbx_home, memory_keyring, provider: LocalOAuthProvider,  # noqa: ANN001
                                        server: ProtectedMcpServer) -> None:
    provider.mcp.cimd = False
    assert tbx("init").exit_code == 0
    threading.Thread(target=approve_when_asked, args=(provider,), daemon=True).start()
    signed = tbx("server", "login", server.url, "--device", "--json")
    assert signed.exit_code == 0, signed.stderr
    assert "enter the code" in signed.stderr
    result = json.loads(signed.stdout)
    assert result["resource"] == server.url and "mcp:tools" in result["scopes"]
    listed = json.loads(tbx("connection", "list", "--json").stdout)
    assert [(c["provider"], c["account"], c["health"]) for c in listed] == [(MCP, server.url, "ok")]
    ws = Workspace.open(tbx_home)
    tokens = token_set(ws, ws.repos.connections.get(result["connection"]))  # type: ignore[arg-type]
    assert tokens.access_token not in signed.stdout + signed.stderr
    assert tbx("server", "login", "local/nothing").exit_code != 0


def test_tbx_server_login_names_the_server_and_binds_it(tbx, tbx_home, memory_keyring,  # noqa: ANN001
                                                        provider: LocalOAuthProvider,
                                                        server: ProtectedMcpServer) -> None:
    from console.model import ServerInstance, Toolbox

    provider.mcp.cimd = False
    assert tbx("init").exit_code == 0
    ws = Workspace.open(tbx_home)
    with ws.change() as change:
        box = Toolbox(name="lab")
        change.repos.toolboxes.put(box)
        change.repos.servers.put(ServerInstance(toolbox=box.id, name="vendor", kind="remote", url=server.url))
    threading.Thread(target=approve_when_asked, args=(provider,), daemon=True).start()
    signed = tbx("server", "login", "lab/vendor", "--device", "--json")
    assert signed.exit_code == 0, signed.stderr
    ws.refresh()
    bound = ws.repos.servers.by_name(box.id, "vendor")
    assert bound is not None and bound.connection == json.loads(signed.stdout)["connection"]


def test_a_published_client_metadata_document_names_tbx_where_the_settings_say(
        tbx, tbx_home, memory_keyring, provider: LocalOAuthProvider,  # noqa: ANN001
        server: ProtectedMcpServer) -> None:
    # The user publishes what tbx prints, at an address of theirs, and names it once in
    # config.toml: every later sign-in there goes by that URL, with no registration.
    from tests.support.canned_http import Canned, CannedHttp

    assert tbx("init").exit_code == 0
    with CannedHttp() as host:
        url = host.base + "/tbx/client.json"
        printed = tbx("server", "client-metadata", url)
        assert printed.exit_code == 0 and printed.stderr == ""
        document = json.loads(printed.stdout)
        assert document["client_id"] == url and "urn:ietf:params:oauth:grant-type:device_code" in document["grant_types"]
        host.put("/tbx/client.json", Canned.json(document))
        tbx_home.config_file.write_text(f'[oauth]\nclient_metadata_url = "{url}"\n')
        threading.Thread(target=approve_when_asked, args=(provider,), daemon=True).start()
        signed = tbx("server", "login", server.url, "--device", "--json")
    assert signed.exit_code == 0, signed.stderr
    assert provider.mcp.registrations == [] and provider.mcp.metadata_documents == [url]
    ws = Workspace.open(tbx_home)
    connection = ws.repos.connections.get(json.loads(signed.stdout)["connection"])
    assert connection is not None and ws.repos.oauth_apps.get(connection.app or "").client_id == url  # type: ignore[union-attr]
    refused = tbx("server", "client-metadata", "https://tbx.example/")
    assert refused.exit_code == 2 and "needs a path" in refused.stderr
