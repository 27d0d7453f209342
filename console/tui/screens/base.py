"""What every main screen shares: the navigation keys, the backend, vault-change hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.worker import Worker

from console.tui.messages import VaultChanged
from console.workspace import Workspace

if TYPE_CHECKING:
    from console.tui.app import ConsoleApp
    from console.tui.backend import Backend


class ConsoleScreen(Screen):
    """A top-level screen. Subclasses implement ``reload()`` to re-read the vault."""

    AUTO_FOCUS = "DataTable, *"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="screen.filter", tooltip="Filter what this screen lists"),
        Binding("ctrl+r", "refresh", "Refresh", id="screen.refresh", show=False, tooltip="Read everything again"),
    ]

    @property
    def console(self) -> ConsoleApp:
        return self.app  # type: ignore[return-value]

    @property
    def backend(self) -> Backend:
        return self.console.backend

    @property
    def ws(self) -> Workspace:
        return self.backend.workspace

    def on_mount(self) -> None:
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    def on_vault_changed(self, _message: VaultChanged) -> None:
        self.reload()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Worker state messages go to the node that started the worker and do not
        # bubble: hand them to the app, which reports failures the same way everywhere.
        self.console.on_worker_state_changed(event)

    def reload(self) -> None:
        """Re-read what this screen shows from the (in-memory) vault. Must be quick."""

    def action_filter(self) -> None:
        """Open the screen's filter, if it has one."""
        from console.tui.widgets.filter import FilterInput

        filters = self.query(FilterInput)
        if filters:
            filters.first().open()
        else:
            self.notify("this screen has nothing to filter", severity="information")

    def action_refresh(self) -> None:
        self.reload()
