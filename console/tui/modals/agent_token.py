"""An agent's new token, shown once: masked, copyable alone or inside a client config."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, Static

from console.gateway.clientconfig import render
from console.tui.modals.secret_once import SecretOnceModal, masked


class AgentTokenModal(SecretOnceModal):
    """``SecretOnceModal`` plus the client config with the token filled in (masked on screen)."""

    # 96 columns where there is room, the whole screen on an 80x24 terminal; the buttons are
    # docked so a long config scrolls under them instead of pushing Done off the screen.
    CSS = """
    AgentTokenModal .dialog { width: 96; max-width: 100%; max-height: 100%; padding: 0 2; }
    AgentTokenModal .dialog-buttons { dock: bottom; margin-top: 0; height: 3; }
    AgentTokenModal .dialog-title { margin-bottom: 0; }
    AgentTokenModal #config { background: $panel; padding: 0 1; margin-bottom: 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "copy_config", "Copy config", id="secret.copy_config",
                tooltip="Copy the client config with this token in it"),
    ]

    def __init__(self, title: str, token: str, note: str, *, agent: str, client: str, url: str) -> None:
        super().__init__(title, token, note)
        self.agent, self.client, self.url = agent, client, url

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(masked(self.token), id="token", classes="token", markup=False)
            yield Static(self.note_text, classes="dialog-body")
            yield Static(self.shown_config(), id="config", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Show", id="reveal")
                yield Button("Copy token", id="copy")
                yield Button("Copy config", id="copy_config")
                yield Button("Done", id="close", variant="primary")

    def shown_config(self) -> str:
        """The config as shown: the token masked (JSON would escape the mask's dots, so it goes in after)."""
        marker = "TOKEN-GOES-HERE"
        return render(self.client, self.agent, self.url, marker).replace(marker, masked(self.token))

    def action_copy_config(self) -> None:
        self.app.copy_to_clipboard(render(self.client, self.agent, self.url, self.token))
        self.notify(f"{self.client} config for {self.agent}, token included, copied to the clipboard")
