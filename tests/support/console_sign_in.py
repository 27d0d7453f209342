"""The console's add dialog as a user drives it, up to a remote server's sign-in modal
(tests/oauth/test_console_mcp_sign_in.py, tests/adversarial/test_hostile_sign_in_screen.py)."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import Input, RadioButton, Static

from console.tui.modals.add_server import AddServerModal
from console.tui.modals.mcp_sign_in import McpSignInModal
from console.tui.widgets.connection_code import DeviceCode
from tests.support.tui import until


async def add_remote(pilot: Pilot, name: str, url: str) -> McpSignInModal:
    """a, "Remote server (URL)", its name and URL typed, Add pressed: the server's 401
    brings the sign-in modal."""
    app = pilot.app
    await pilot.press("a")
    await until(pilot, lambda: isinstance(app.screen, AddServerModal), 10, "the add dialog")
    await pilot.press(*"remote server", "enter")
    await until(pilot, lambda: app.screen.query("#url"), 10, "the remote server form")
    for field, text in (("name", name), ("url", url)):
        app.screen.query_one(f"#{field}", Input).focus()
        await pilot.pause()
        await pilot.press(*text)
    await pilot.click("#add")
    await until(pilot, lambda: isinstance(app.screen, McpSignInModal), 30, "the sign-in modal")
    modal = app.screen
    assert isinstance(modal, McpSignInModal)
    await pilot.pause()
    return modal


async def sign_in_by_device(pilot: Pilot, modal: McpSignInModal) -> str:
    """Pick "with a code", press Sign in; the code the screen shows."""
    await pilot.click("#device")
    assert modal.query_one("#device", RadioButton).value
    await pilot.click("#start")
    code = modal.query_one(DeviceCode)
    await until(pilot, lambda: code.code, 30, "the device code")
    shown = str(modal.query_one("#verify-url", Static).render())
    assert shown.startswith("http://127.0.0.1:") and "/device" in shown
    return code.code
