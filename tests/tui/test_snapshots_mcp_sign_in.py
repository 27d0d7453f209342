"""The sign-in to a remote server's MCP authorization, over the Servers screen, at 80x24:
the device-code step and the browser step (pytest-textual-snapshot). The flows themselves, pressed key by key
against a real authorization server, are tests/oauth/test_console_mcp_sign_in.py.

Regenerate after an intended change with:
    pytest tests/tui/test_snapshots_mcp_sign_in.py --snapshot-update
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual.pilot import Pilot

from console.oauth.client import DeviceGrant
from console.tui.backend import Backend
from console.tui.modals.mcp_sign_in import McpSignInModal
from tests.support.tui import still_app

SIZE = (80, 24)
SERVER_URL = "https://mcp.example.com/mcp"
GRANT = DeviceGrant(device_code="dc-fixed", user_code="WDJB-MJHT",
                    verification_uri="https://auth.example.com/device", verification_uri_complete=None,
                    interval=5, expires_in=900)
SIGN_IN_URL = ("https://auth.example.com/authorize?response_type=code&client_id=dcr-Ix63SVOf8kn4jbB3"
               "&redirect_uri=http%3A%2F%2F127.0.0.1%3A40123%2Fcallback&scope=mcp%3Atools&state=Zk3q9s0dW1rT"
               "&resource=https%3A%2F%2Fmcp.example.com%2Fmcp"
               "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256")


def waiting(backend: Backend, device: bool) -> Callable[[Pilot], Awaitable[None]]:
    async def run(pilot: Pilot) -> None:
        await pilot.press("2")
        await pilot.pause()
        modal = McpSignInModal(backend.workspace, SERVER_URL, server="local/vendor")
        await pilot.app.push_screen(modal)
        await pilot.pause()
        modal.show_waiting(device)
        modal.show_code(GRANT) if device else modal.show_url(SIGN_IN_URL)
        await pilot.pause()

    return run


def test_the_device_code_of_a_remote_server_sign_in(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=waiting(seeded, True))


def test_the_browser_step_of_a_remote_server_sign_in(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=waiting(seeded, False))
