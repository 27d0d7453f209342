"""Show what writing an agent's entry does to a client's config file, and ask first."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Label, Static

from console.gateway.clientfile import Merge
from console.tui.modals.confirm import YesNoModal


class WriteConfigModal(YesNoModal):
    """The diff (markup off: a TOML ``[table]`` is no style), Write or Cancel."""

    CSS = """
    WriteConfigModal .dialog { width: 100; max-width: 100%; max-height: 100%; padding: 0 2; }
    WriteConfigModal .dialog-title { margin-bottom: 0; }
    WriteConfigModal #diff { height: auto; max-height: 14; background: $panel; padding: 0 1; }
    WriteConfigModal .dialog-buttons { dock: bottom; margin-top: 0; height: 3; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "no", "Cancel", id="write_config.cancel"),
        Binding("y", "yes", "Write", id="write_config.yes", show=False),
        Binding("n", "no", "Cancel", id="write_config.no", show=False),
    ]

    def __init__(self, client: str, change: Merge) -> None:
        super().__init__()
        self.client, self.change = client, change

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Write the {self.client} config?", classes="dialog-title")
            backup = " (the current file is kept as a .tbx-backup next to it)" if self.change.old is not None else ""
            yield Static(f"{self.change.path}{backup}", classes="dialog-body", markup=False)
            with VerticalScroll(id="diff"):
                yield Static(self.change.diff(), markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="no")
                yield Button("Write", id="yes", variant="primary")
