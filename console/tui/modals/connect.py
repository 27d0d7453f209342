"""``c`` and ``R`` on Connections: choose a provider and how to sign in, then wait for it.

The sign-in runs in a thread worker of this modal (the browser flow blocks until the
provider redirects back). While it waits the modal shows the address it opened, or the
device code in big letters with the page to type it on. Closing the modal abandons the
sign-in: the device flow stops at its next poll, and the browser flow's loopback
listener is woken at once so its port closes now rather than at the time-out.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, ContentSwitcher, Input, Label, RadioButton, RadioSet, Select, Static
from textual.worker import Worker

from console.errors import TbxError
from console.model import Connection, OAuthApp
from console.oauth.client import DeviceGrant
from console.oauth.flows import Opener, open_system_browser
from console.oauth.providers import BUILTIN
from console.services.connections import SignIn, add_connection, reconnect
from console.tui.widgets.connection_code import DeviceCode
from console.tui.widgets.connection_format import provider_title
from console.workspace import Workspace


@dataclass(frozen=True)
class Signed:
    """What a finished sign-in gives the screen."""

    connection: Connection
    is_new: bool


def parse_scopes(raw: str) -> list[str]:
    return list(dict.fromkeys(raw.replace(",", " ").split()))


class ConnectModal(ModalScreen[Signed | None]):
    """Dismisses with ``Signed`` once the account's tokens are in the vault, else None."""

    CSS = """
    ConnectModal .connect-dialog { width: 88; }
    ConnectModal ContentSwitcher, ConnectModal ContentSwitcher > Vertical { height: auto; }
    ConnectModal Label { margin-top: 1; }
    ConnectModal Select { width: 1fr; }
    ConnectModal Select.-textual-compact > SelectCurrent { background: $panel-lighten-1; padding: 0 1; }
    ConnectModal Select.-textual-compact:focus > SelectCurrent { background: $primary 20%; }
    ConnectModal .first { margin-top: 0; }
    ConnectModal Input { height: 1; border: none; padding: 0 1; background: $panel-lighten-1; }
    ConnectModal Input:focus { background: $primary 20%; }
    ConnectModal RadioSet { width: 1fr; border: none; padding: 0; background: transparent; }
    ConnectModal .hint { color: $text-muted; }
    ConnectModal .waiting { color: $text-muted; margin-top: 1; }
    ConnectModal #url { background: $panel; padding: 0 1; margin-top: 1; }
    ConnectModal #verify-url { text-style: bold; color: $accent; margin-top: 1; width: 1fr; text-align: center; }
    ConnectModal DeviceCode { margin-top: 1; }
    ConnectModal #copy { display: none; }
    ConnectModal.waiting #copy { display: block; }
    ConnectModal.waiting #start { display: none; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="connect.cancel", tooltip="Close; a sign-in under way is abandoned"),
        Binding("ctrl+s", "start", "Sign in", id="connect.start", tooltip="Start the sign-in"),
        Binding("c", "copy", "Copy", id="connect.copy", show=False,
                tooltip="Copy the sign-in address, or the device code, while waiting"),
    ]

    def __init__(self, ws: Workspace, apps: Sequence[OAuthApp], *, scopes: dict[str, list[str]],
                 reconnecting: Connection | None = None, provider: str | None = None,
                 opener: Opener = open_system_browser) -> None:
        """``scopes``: provider -> the scopes suggested for a new connection;
        ``reconnecting``: sign in again for this connection (its provider and scopes);
        ``opener`` opens the sign-in address (the system browser; tests drive Chromium)."""
        super().__init__()
        self.ws, self.apps, self.scopes = ws, list(apps), scopes
        self.reconnecting, self.opener = reconnecting, opener
        known = [a.provider for a in self.apps]
        self.provider = (reconnecting.provider if reconnecting else
                         provider if provider in known or not known else known[0])
        self.url: str | None = None
        self.grant: DeviceGrant | None = None
        self._cancel = threading.Event()
        self._signing_in = False

    # -- the form ------------------------------------------------------------------------------

    def heading(self) -> str:
        again = self.reconnecting
        return f"Sign in again as {again.provider}/{again.account}" if again else "Connect an account"

    def who(self) -> str:
        """Whom the user signs in to, as the waiting views name it."""
        return provider_title(self.provider)

    def page_owner(self, grant: DeviceGrant) -> str:
        """Whose page the device code is typed on."""
        return self.who()

    def compose_choice(self) -> ComposeResult:
        """What is asked before "sign in" (a subclass signs in to something else)."""
        again = self.reconnecting
        if again is not None:
            yield Static(Text(f"Asks {provider_title(again.provider)} for the same scopes: "
                              f"{' '.join(again.scopes) or 'its defaults'}. Sign in as {again.account}."))
            return
        yield Label("provider (one you registered an app at: a on Connections)", classes="first")
        yield Select([(f"{provider_title(a.provider)}  ({a.provider})", a.provider) for a in self.apps],
                     value=self.provider, allow_blank=False, id="provider", compact=True)
        yield Label("scopes (space-separated)")
        yield Input(" ".join(self.scopes.get(self.provider, [])), id="scopes")
        yield Static("suggested: what the catalog's servers for this provider need, and the "
                     "account's name", classes="hint")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog connect-dialog"):
            yield Label(self.heading(), classes="dialog-title")
            with ContentSwitcher(initial="choose"):
                with Vertical(id="choose"):
                    yield from self.compose_choice()
                    yield Label("sign in")
                    with RadioSet(id="how"):
                        yield RadioButton("in a browser on this machine", value=True, id="browser")
                        yield RadioButton("with a code, on any device (SSH sessions, no browser here)", id="device")
                with Vertical(id="browser-wait"):
                    yield Static("", id="browser-title")
                    yield Static("", id="url", markup=False)
                    yield Static("", id="browser-waiting", classes="waiting")
                with Vertical(id="device-wait"):
                    yield Static("", id="device-title")
                    yield Static("", id="verify-url", markup=False)
                    yield DeviceCode(id="code")
                    yield Static("Waiting for you to finish there… c copies the code.", classes="waiting")
            yield Static("", id="problem", classes="problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Copy", id="copy")
                yield Button("Cancel", id="cancel")
                yield Button("Sign in", id="start", variant="primary")

    def on_mount(self) -> None:
        self._offer_device()
        self.query_one("#start", Button).focus()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Worker.StateChanged does not bubble; an unexpected failure goes to the app's report.
        event.prevent_default()
        report = getattr(self.app, "on_worker_state_changed", None)
        if report is not None:
            report(event)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "provider" and isinstance(event.value, str) and event.value != self.provider:
            self.provider = event.value
            self.query_one("#scopes", Input).value = " ".join(self.scopes.get(self.provider, []))
            self._offer_device()

    def _offer_device(self) -> None:
        spec = BUILTIN.get(self.provider)
        device = self.query_one("#device", RadioButton)
        device.disabled = spec is not None and not spec.supports_device
        if device.disabled:
            device.value = False
            self.query_one("#browser", RadioButton).value = True
            device.tooltip = f"{spec.title if spec else self.provider} has no device sign-in"

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_start()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        {"start": self.action_start, "copy": self.action_copy}.get(event.button.id or "", self.action_cancel)()

    # -- signing in ----------------------------------------------------------------------------

    def action_start(self) -> None:
        if self._signing_in:
            return
        device = self.query_one("#device", RadioButton).value
        scopes = (parse_scopes(self.query_one("#scopes", Input).value) or None) if self.query("#scopes") else None
        self._signing_in = True
        self.show_waiting(device)
        self._sign_in(scopes, device)

    def show_waiting(self, device: bool) -> None:
        """Switch to the waiting view, empty until the address or the code arrives."""
        self.url, self.grant = None, None
        self.query_one("#problem", Static).update("")
        self.add_class("waiting")
        title = self.who()
        if device:
            self.query_one("#device-title", Static).update(f"Asking {title} for a code…")
            self.query_one("#verify-url", Static).update("")
            self.query_one(DeviceCode).show("")
        else:
            self.query_one("#browser-title", Static).update(f"Starting the {title} sign-in…")
            self.query_one("#url", Static).update("")
            self.query_one("#browser-waiting", Static).update("")
        self.query_one(ContentSwitcher).current = "device-wait" if device else "browser-wait"
        self.query_one("#cancel", Button).focus()

    @work(thread=True, exit_on_error=False, group="oauth-sign-in")
    def _sign_in(self, scopes: list[str] | None, device: bool) -> None:
        app = self.app
        how = SignIn(device=device, opener=self._open, on_url=self._on_url,
                     show_code=lambda grant: app.call_from_thread(self.show_code, grant),
                     sleep=self._cancel.wait, cancelled=self._cancel.is_set)
        try:
            signed = self.run_sign_in(how, scopes)
        except TbxError as exc:
            if not self._cancel.is_set():
                app.call_from_thread(self._failed, str(exc))
            return
        app.call_from_thread(self._finished, signed)

    def run_sign_in(self, how: SignIn, scopes: list[str] | None) -> Signed:
        """Worker thread: the sign-in itself, until the tokens are in the vault."""
        if self.reconnecting is not None:
            return Signed(reconnect(self.ws, self.reconnecting.id, how), False)
        connection, is_new = add_connection(self.ws, self.provider, scopes, how)
        return Signed(connection, is_new)

    def _on_url(self, url: str) -> None:
        """Worker thread: the sign-in address is ready, its listener is up."""
        self.url = url
        if not self._cancel.is_set():
            self.app.call_from_thread(self.show_url, url)

    def _open(self, url: str) -> bool:
        """Worker thread: open the address, unless the user gave up already."""
        if self._cancel.is_set():
            return False
        opened = self.opener(url)
        if not opened:
            self.app.call_from_thread(self._not_opened)
        return opened

    def show_url(self, url: str) -> None:
        title = self.who()
        self.query_one("#browser-title", Static).update(
            f"Finish signing in to {title} in the browser that opened. If none did, open this address in a "
            "browser on this machine (it sends you back to a port here):")
        self.query_one("#url", Static).update(url)
        minutes = self.ws.settings.oauth.browser_timeout / 60
        self.query_one("#browser-waiting", Static).update(
            f"Waiting for {title} to send you back (up to {minutes:.0f} min)… c copies the address.")

    def _not_opened(self) -> None:
        self.query_one("#browser-title", Static).update(
            "No browser could be opened from here: open this address in a browser on this machine:")

    def show_code(self, grant: DeviceGrant) -> None:
        self.grant = grant
        self.query_one("#device-title", Static).update(
            f"On any device (a phone will do), open this {self.page_owner(grant)} page and enter the code:")
        self.query_one("#verify-url", Static).update(grant.verification_uri)
        self.query_one(DeviceCode).show(grant.user_code)

    def _failed(self, message: str) -> None:
        self._signing_in = False
        self.remove_class("waiting")
        self.query_one(ContentSwitcher).current = "choose"
        self.query_one("#problem", Static).update(Text(message))
        self.query_one("#start", Button).label = "Try again"
        self.query_one("#start", Button).focus()
        self.notify(message, severity="error", timeout=10)

    def _finished(self, signed: Signed) -> None:
        self._signing_in = False
        if not self._cancel.is_set():
            self.dismiss(signed)
            return
        # Closed a moment too late: the account is connected all the same (the screens
        # heard of it from the vault); say so.
        self.app.notify(f"signed in as {signed.connection.provider}/{signed.connection.account} after all")

    # -- leaving -------------------------------------------------------------------------------

    def action_copy(self) -> None:
        if self.grant is not None:
            self.app.copy_to_clipboard(self.grant.user_code)
            self.notify("code copied to the clipboard")
        elif self.url is not None:
            self.app.copy_to_clipboard(self.url)
            self.notify("sign-in address copied to the clipboard")

    def action_cancel(self) -> None:
        self._abandon()
        self.dismiss(None)

    def on_unmount(self) -> None:
        self._abandon()

    def _abandon(self) -> None:
        """The sign-in thread notices within a fifth of a second and ends, saving nothing."""
        if not self._signing_in:
            return
        self._cancel.set()
        self._signing_in = False
