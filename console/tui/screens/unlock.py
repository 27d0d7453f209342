"""Opening a passphrase-locked vault. A wrong passphrase changes nothing and asks again.

The screen's result is the opened workspace (``dismiss``): the app shows the console then."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Input, Label, Static

from console.errors import TbxError, WrongPassphrase
from console.workspace import Workspace

if TYPE_CHECKING:
    from console.tui.app import ConsoleApp


class UnlockScreen(Screen[Workspace]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+q", "app.quit", "Quit", id="unlock.quit")]

    def __init__(self, vault: str, passphrase_needed: bool = True) -> None:
        super().__init__()
        self.vault, self.passphrase_needed = vault, passphrase_needed

    @property
    def console(self) -> ConsoleApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Open the vault", classes="dialog-title")
            yield Static(self.vault, classes="dialog-body")
            yield Input(password=True, placeholder="passphrase", id="passphrase")
            yield Static("", id="problem", classes="problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Open", id="open", variant="primary")

    def on_mount(self) -> None:
        field = self.query_one("#passphrase", Input)
        field.display = self.passphrase_needed
        if self.passphrase_needed:
            field.focus()
        else:
            self._open(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._open(event.value)

    def on_button_pressed(self, _event: Button.Pressed) -> None:
        self._open(self.query_one("#passphrase", Input).value if self.passphrase_needed else None)

    def _open(self, passphrase: str | None) -> None:
        self.query_one("#problem", Static).update("opening…")
        self.query_one("#open", Button).disabled = True
        self._unlock(passphrase)

    @work(exclusive=True, exit_on_error=False, group="unlock")
    async def _unlock(self, passphrase: str | None) -> None:
        try:  # Argon2id, or a keyring that takes its time: off the loop
            ws = await asyncio.to_thread(self.console.backend.open_vault, passphrase)
        except WrongPassphrase:
            self._problem("wrong passphrase; nothing was changed. Try again.")
            return
        except TbxError as exc:
            self._problem(str(exc))
            return
        self.dismiss(ws)

    def _problem(self, message: str) -> None:
        self.query_one("#problem", Static).update(message)
        self.query_one("#open", Button).disabled = False
        field = self.query_one("#passphrase", Input)
        field.value = ""
        if field.display:
            field.focus()
