"""A token shown exactly once, masked until asked, copyable."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


def masked(token: str) -> str:
    return token[:4] + "•" * 24 + token[-4:]


class SecretOnceModal(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Done", id="secret.close"),
        Binding("c", "copy", "Copy", id="secret.copy"),
        Binding("v", "reveal", "Show/hide", id="secret.reveal"),
    ]

    def __init__(self, title: str, token: str, note: str) -> None:
        super().__init__()
        self.title_text, self.token, self.note_text = title, token, note
        self.revealed = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(masked(self.token), id="token", classes="token", markup=False)
            yield Static(self.note_text, classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Show", id="reveal")
                yield Button("Copy", id="copy")
                yield Button("Done", id="close", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        # Each button is named after its action. Textual calls this handler of every class
        # in the MRO, so a subclass adds buttons and actions, never another handler.
        event.stop()
        action = getattr(self, f"action_{event.button.id}", None)
        if action is not None:
            action()

    def action_reveal(self) -> None:
        self.revealed = not self.revealed
        self.query_one("#token", Static).update(self.token if self.revealed else masked(self.token))

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.token)
        self.notify("token copied to the clipboard")

    def action_close(self) -> None:
        self.dismiss()
