"""Signing in to a remote server's MCP authorization from the Servers screen.

Shown when an add meets a server that asks for sign-in, and by ``i`` on a remote server
whose sign-in expired or was revoked. It is the Connections screen's sign-in modal
(``ConnectModal``: the browser with its address shown to copy, or a device code in big
letters, and a Cancel that stops the worker at its next poll) signing in through
``remote_sign_in`` instead of a registered provider app: discovery and registration
happen on the way, from the server's 401.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from console.oauth.client import DeviceGrant, OAuthFlowError
from console.oauth.flows import Opener, open_system_browser
from console.services.connections import SignIn
from console.services.mcp_sign_in import MCP
from console.tui.modals.connect import ConnectModal, Signed
from console.workspace import Workspace


def loopback_port(url: str) -> int | None:
    """The port here the sign-in address sends the browser back to."""
    redirect = parse_qs(urlsplit(url).query).get("redirect_uri", [""])[0]
    parts = urlsplit(redirect)
    return parts.port if parts.hostname in ("127.0.0.1", "localhost", "::1") else None


class McpSignInModal(ConnectModal):
    """Dismisses with ``Signed`` once the server's tokens are in the vault, else None."""

    # A screen's CSS is scoped to its own type. Tighter than the Connections screen's: this
    # one opens over Servers in whatever terminal the add was started in, 80x24 included,
    # and its Cancel must stay in view beside the code.
    CSS = ConnectModal.CSS.replace("ConnectModal", "McpSignInModal") + """
    McpSignInModal #verify-url, McpSignInModal DeviceCode, McpSignInModal #url { margin-top: 0; }
    McpSignInModal DeviceCode #plain { margin-top: 0; }
    """

    def __init__(self, ws: Workspace, url: str, *, server: str, again: bool = False,
                 opener: Opener = open_system_browser) -> None:
        """``server``: the name it is (to be) added under; ``again``: it was signed in to
        before and the sign-in stopped working."""
        super().__init__(ws, [], scopes={}, provider=MCP, opener=opener)
        self.server_url, self.server, self.again = url, server, again

    def heading(self) -> str:
        return f"Sign in again to {self.server}" if self.again else f"Sign in to {self.server}"

    def who(self) -> str:
        return urlsplit(self.server_url).netloc or self.server_url

    def page_owner(self, grant: DeviceGrant) -> str:
        # The code is typed at the server's authorization server, often another host.
        return urlsplit(grant.verification_uri).netloc or self.who()

    def compose_choice(self) -> ComposeResult:
        why = ("its sign-in no longer works (expired or revoked)" if self.again else
               "it asks for sign-in (MCP authorization)")
        yield Static(Text(f"{self.server_url}: {why}. Once signed in, the gateway's requests to it carry this "
                          "sign-in (kept on Connections); agents never see its token."), classes="first")

    def show_url(self, url: str) -> None:
        super().show_url(url)
        # Shorter than the Connections screen's, so that Cancel stays in view at 80x24, and
        # with the way from a browser elsewhere: a console over SSH has none of its own.
        self.query_one("#browser-title", Static).update(
            "Finish in the browser that opened, or open this address in a browser on this machine:")
        port = loopback_port(url)
        elsewhere = f" Another machine: 'ssh -L {port}:127.0.0.1:{port}' here first, or use a code." if port else ""
        minutes = self.ws.settings.oauth.browser_timeout / 60
        self.query_one("#browser-waiting", Static).update(
            f"Waiting up to {minutes:.0f} min… c copies the address.{elsewhere}")

    def run_sign_in(self, how: SignIn, scopes: list[str] | None) -> Signed:
        from console.services.connections import remove
        from console.services.remote_sign_in import sign_in_with

        connection, is_new = sign_in_with(self.ws, self.server_url, how)
        if self._cancel.is_set() and is_new:
            # Finished as the user gave up: a sign-in nobody asked for any more is taken back.
            remove(self.ws, connection.id)
            raise OAuthFlowError("sign-in cancelled; nothing was saved")
        return Signed(connection, is_new)
