"""``e`` on Servers: change a server's env, mounts and limits.

The modal only collects and validates; the edit itself (a new container, a restart)
runs in the Servers screen's worker, which shows its progress.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from console.catalog.model import CatalogEntry
from console.model import DesiredState, ServerInstance
from console.tui.widgets.add_server_form import FormProblem
from console.tui.widgets.edit_server_form import EditRequest, EditServerForm


class EditServerModal(ModalScreen[EditRequest | None]):
    CSS = """
    EditServerModal .edit-dialog { width: 90; max-width: 100%; height: 34; max-height: 100%; }
    EditServerModal #form { height: 1fr; border: round $panel; padding: 0 1; }
    EditServerModal #form:focus-within { border: round $primary; }
    EditServerModal #problem { margin-top: 1; }
    EditServerModal .dialog-buttons { margin-top: 0; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="edit.cancel", tooltip="Close without changing anything"),
        Binding("ctrl+s", "submit", "Save", id="edit.submit", tooltip="Validate and make the container again"),
    ]

    def __init__(self, label: str, entry: CatalogEntry, server: ServerInstance, *, check_paths: bool) -> None:
        super().__init__()
        self.label, self.entry, self.server, self.check_paths = label, entry, server, check_paths

    def intro(self) -> str:
        running = self.server.desired_state is DesiredState.RUNNING
        return ("Saving makes its container again with these settings" + (", and restarts it" if running else "") +
                " (a change of its hosts alone does not: the gateway's proxy applies it); its tools, approvals, "
                "secrets and grants are kept. Secrets and the account cannot change here: remove the server and "
                "add it again.")

    def form(self) -> EditServerForm:
        return EditServerForm(self.entry, self.server, check_paths=self.check_paths)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog edit-dialog"):
            yield Label(f"Edit {self.label}", classes="dialog-title")
            yield Static(Text(self.intro()), classes="dialog-body")
            with VerticalScroll(id="form"):
                self.fields = self.form()
                yield self.fields
            yield Static("", id="problem", classes="problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Save", id="save", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#form Input", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_submit()
        else:
            self.dismiss(None)

    def action_submit(self) -> None:
        try:
            request = self.fields.collect()
        except FormProblem as problem:
            self.query_one("#problem", Static).update(Text(str(problem)))
            self.query_one(f"#{problem.field_id}").focus()
            return
        self.dismiss(request)

    def action_cancel(self) -> None:
        self.dismiss(None)
