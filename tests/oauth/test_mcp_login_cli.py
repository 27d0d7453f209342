"""``tbx server login`` as a script sees it: a device sign-in to a remote MCP server's authorization."""

from __future__ import annotations

import json
import threading
import time

from console.oauth.mcp_upstream import MCP
from console.services.connection_tokens import token_set
from console.workspace import Workspace
from tests.support.mcp_protected import ProtectedMcpServer
from tests.support.oauth_provider import LocalOAuthProvider


def test_tbx_server_login_by_device_code(tbx, tbx_home, memory_keyring, provider: LocalOAuthProvider,  # noqa: ANN001
                                        server: ProtectedMcpServer) -> None:
    provider.mcp.cimd = False
    assert tbx("init").exit_code == 0
    done = threading.Event()

    def user_at_the_other_device() -> None:
        while not done.is_set():
            with provider.store.lock:
                pending = [d.user_code for d in provider.store.devices.values() if d.shape == "mcp" and not d.decision]
            if pending:
                provider.approve_device(pending[0])
                return
            time.sleep(0.05)

    threading.Thread(target=user_at_the_other_device, daemon=True).start()
    try:
        signed = tbx("server", "login", server.url, "--device", "--json")
    finally:
        done.set()
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
