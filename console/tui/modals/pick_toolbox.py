"""``t`` on Servers and Tools: choose which toolbox they show."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option


class PickToolboxModal(ModalScreen[str | None]):
    """Dismisses with the chosen toolbox's name, or None."""

    CSS = """
    PickToolboxModal .pick-dialog { width: 60; }
    PickToolboxModal OptionList { height: auto; max-height: 16; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="pick.cancel", tooltip="Keep the current toolbox"),
    ]

    def __init__(self, toolboxes: list[tuple[str, str]], current: str) -> None:
        """``toolboxes``: (name, a short description) pairs."""
        super().__init__()
        self.toolboxes, self.current = toolboxes, current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog pick-dialog"):
            yield Label("Show which toolbox?", classes="dialog-title")
            options = [Option(Text(name, style="bold").append(f"  {about}", style="dim"), id=name)
                       for name, about in self.toolboxes]
            yield OptionList(*options, id="toolboxes")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        names = [name for name, _ in self.toolboxes]
        if self.current in names:
            options.highlighted = names.index(self.current)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
