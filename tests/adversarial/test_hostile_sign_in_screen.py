"""A remote server whose authorization server tries to write to the user's terminal through
the sign-in the console (and ``tbx server login``) shows.

The device grant's user code and verification page are put on the screen as they came. A
hostile authorization server sends ESC sequences there (OSC 52 rewrites the clipboard,
CSI 2J clears the screen), text no one could type, or a page that is no web address: the
grant is refused with one line saying so, nothing reaches the terminal, and nothing is
added or kept. The hostile side is a canned HTTP server on 127.0.0.1 (tests/support/canned_http.py)
that registers tbx as asked and answers the device request with the hostile grant.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from textual.widgets import RadioButton, Static

from console.services.mcp_sign_in import MCP
from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from tests.support.canned_http import Canned, CannedHttp
from tests.support.console_sign_in import add_remote
from tests.tui import test_servers_screen as servers_screen
from tests.tui.conftest import test_keyring  # noqa: F401 - engine_backend's fixture

engine_backend = servers_screen.engine_backend
until = servers_screen.until
ESCAPES = ("\x1b", "\x07", "\x9b")

HOSTILE_GRANTS = {
    "escapes in the code": {"user_code": "WDJB\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J-MJHT",
                            "verification_uri": "https://auth.example.test/device"},
    "escapes in the page": {"user_code": "WDJB-MJHT",
                            "verification_uri": "https://auth.example.test/device\x1b]0;owned\x07\x1b[2J"},
    "a code no one could type": {"user_code": "W" * 5000, "verification_uri": "https://auth.example.test/device"},
    "a page that is a script": {"user_code": "WDJB-MJHT", "verification_uri": "javascript:alert(1)"},
    "a complete page with escapes": {"user_code": "WDJB-MJHT", "verification_uri": "https://auth.example.test/d",
                                     "verification_uri_complete": "https://auth.example.test/d?c=\x1b[2J"},
}


class _Registering(dict):
    """The canned routes, but /register echoes the redirect URIs tbx asked for (an honest
    registration: the hostility is in the device grant)."""

    def __init__(self, host: CannedHttp) -> None:
        super().__init__()
        self.host = host

    def get(self, key: Any, default: Any = None) -> Any:
        if key == ("POST", "/register"):
            asked = json.loads(self.host.seen[-1][2])
            return Canned.json({"client_id": "hostile-client", "redirect_uris": asked["redirect_uris"],
                                "grant_types": asked["grant_types"], "token_endpoint_auth_method": "none"}, 201)
        return super().get(key, default)


@pytest.fixture
def hostile() -> Iterator[CannedHttp]:
    with CannedHttp() as host:
        host.routes = _Registering(host)
        yield host


def arrange(host: CannedHttp, grant: dict[str, str]) -> str:
    """A server at host/mcp asking for sign-in at host, whose device request answers ``grant``."""
    url = host.base + "/mcp"
    host.put("/mcp", Canned(401, b"", {"WWW-Authenticate": f'Bearer resource_metadata="{host.base}/prm"'}),
             method="POST")
    host.put("/prm", Canned.json({"resource": url, "authorization_servers": [host.base],
                                  "scopes_supported": ["mcp:tools"]}))
    host.put("/.well-known/oauth-authorization-server", Canned.json({
        "issuer": host.base, "authorization_endpoint": host.base + "/authorize", "token_endpoint": host.base + "/token",
        "registration_endpoint": host.base + "/register", "device_authorization_endpoint": host.base + "/device",
        "code_challenge_methods_supported": ["S256"], "response_types_supported": ["code"]}))
    host.put("/device", Canned.json({"device_code": "dc", "interval": 1, "expires_in": 600, **grant}), method="POST")
    return url


@pytest.mark.docker
@pytest.mark.parametrize("grant", list(HOSTILE_GRANTS), ids=list(HOSTILE_GRANTS))
async def test_a_hostile_device_grant_never_reaches_the_console_screen(
        engine_backend: Backend, hostile: CannedHttp, grant: str) -> None:
    url = arrange(hostile, HOSTILE_GRANTS[grant])
    ws = engine_backend.workspace
    app = ConsoleApp(engine_backend)
    async with app.run_test(size=servers_screen.SIZE) as pilot:
        screen = await servers_screen.open_servers(pilot)
        modal = await add_remote(pilot, "vendor", url)
        await pilot.click("#device")
        assert modal.query_one("#device", RadioButton).value
        await pilot.click("#start")
        problem = modal.query_one("#problem", Static)
        await until(pilot, lambda: str(problem.render()), 30, "the refusal")
        said = str(problem.render())
        assert "answered the device sign-in with" in said and "refused" in said and "\n" not in said
        shown = servers_screen.screen_text(app)
        assert not any(escape in shown or escape in said for escape in ESCAPES)
        assert "owned" not in shown and "cm0gLXJmIH4" not in shown
        assert getattr(modal, "grant", None) is None
        await pilot.click("#cancel")
        await until(pilot, lambda: not screen.adding, 10, "the pending row to go")
    ws.refresh()
    assert ws.repos.servers.by_name(ws.repos.toolboxes.require("local").id, "vendor") is None
    assert [c for c in ws.repos.connections if c.provider == MCP] == []
    assert [a for a in ws.repos.oauth_apps if a.provider == MCP] == []


def test_tbx_server_login_prints_no_hostile_grant(tbx, tbx_home, memory_keyring,  # noqa: ANN001
                                                  hostile: CannedHttp) -> None:
    url = arrange(hostile, HOSTILE_GRANTS["escapes in the code"])
    assert tbx("init").exit_code == 0
    signed = tbx("server", "login", url, "--device")
    assert signed.exit_code != 0
    assert "answered the device sign-in with" in signed.stderr
    assert not any(escape in signed.stdout + signed.stderr for escape in ESCAPES)
