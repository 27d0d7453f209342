"""The sign-in to a remote server's MCP authorization, over the Servers screen, at 80x24:
the device-code step (pytest-textual-snapshot). The flows themselves, pressed key by key
against a real authorization server, are tests/oauth/test_console_mcp_sign_in.py.

Regenerate after an intended change with:
    pytest tests/tui/test_snapshots_mcp_sign_in.py --snapshot-update
"""

from __future__ import annotations

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


def test_the_device_code_of_a_remote_server_sign_in(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    async def run(pilot: Pilot) -> None:
        await pilot.press("2")
        await pilot.pause()
        modal = McpSignInModal(seeded.workspace, SERVER_URL, server="local/vendor")
        await pilot.app.push_screen(modal)
        await pilot.pause()
        modal.show_waiting(True)
        modal.show_code(GRANT)
        await pilot.pause()

    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=run)
