"""Ask for one value (a name, a path, a passphrase), validated before it is accepted."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

Check = Callable[[str], str | None]
"""Returns an error message for a bad value, None for a good one."""


class PromptModal(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(self, title: str, label: str, *, value: str = "", placeholder: str = "", password: bool = False,
                 check: Check | None = None, confirm: str = "OK") -> None:
        super().__init__()
        self.title_text, self.label, self.value, self.placeholder = title, label, value, placeholder
        self.password, self.check, self.confirm = password, check, confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(self.label, classes="dialog-body")
            yield Input(value=self.value, placeholder=self.placeholder, password=self.password, id="value")
            yield Static("", id="problem", classes="problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(self.confirm, id="ok", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#value", Input).focus()

    def _submit(self) -> None:
        value = self.query_one("#value", Input).value
        problem = self.check(value) if self.check else None
        if problem:
            self.query_one("#problem", Static).update(problem)
            return
        self.dismiss(value)

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
