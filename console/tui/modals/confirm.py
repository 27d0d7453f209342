"""Ask before doing something that removes or cuts off."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class YesNoModal(ModalScreen[bool]):
    """A question answered by a "yes" and a "no" button (ids ``yes``/``no``), y/n keys and
    escape. Focus starts on "no": a stray enter never removes anything."""

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)


class ConfirmModal(YesNoModal):
    """Dismisses with True only on an explicit yes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "no", "Cancel", id="confirm.cancel"),
        Binding("y", "yes", "Yes", id="confirm.yes", show=False),
        Binding("n", "no", "No", id="confirm.no", show=False),
    ]

    def __init__(self, title: str, body: str, confirm: str = "Yes", danger: bool = True) -> None:
        super().__init__()
        self.title_text, self.body, self.confirm, self.danger = title, body, confirm, danger

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(self.body, classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="no")
                yield Button(self.confirm, id="yes", variant="error" if self.danger else "primary")
