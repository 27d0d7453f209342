"""``e`` on Audit: where to write, and — while filters are on — whether to write every
record or only the matching ones. The choice is on screen, never guessed: the full log
is what ``tbx audit verify`` can check; a filtered subset is not."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static


@dataclass(frozen=True)
class ExportRequest:
    path: Path
    filtered: bool
    """Only the records matching the screen's filters (of the whole log, not only those loaded)."""


def path_problem(text: str) -> str | None:
    path = Path(text.strip()).expanduser()
    if not text.strip():
        return "name a file to write"
    if path.is_dir():
        return "that is a folder: name a file in it"
    if not path.parent.is_dir():
        return f"the folder {path.parent} does not exist"
    return None


class AuditExportModal(ModalScreen[ExportRequest | None]):
    DEFAULT_CSS = """
    AuditExportModal Input.-textual-compact { margin: 1 0; padding: 0 1; background: $panel-lighten-1; }
    AuditExportModal Input.-textual-compact:focus { background: $primary 20%; }
    AuditExportModal Checkbox.-textual-compact { padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="export.cancel")]

    def __init__(self, default: Path, filters: str | None) -> None:
        """``filters``: the screen's active filters in words, or None when there are none."""
        super().__init__()
        self.default, self.filters = default, filters

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Export the audit log", classes="dialog-title")
            yield Static("Write to this file (JSON lines, each record exactly as written):", classes="dialog-body")
            yield Input(value=str(self.default), id="path", compact=True)  # one row: the dialog fits 80x24
            if self.filters is not None:
                yield Checkbox(f"only the records matching the filters ({self.filters})", False, id="filtered",
                               compact=True)
            yield Static("", id="what", classes="dialog-body")
            yield Static("", id="problem", classes="problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Export", id="ok", variant="primary")

    def on_mount(self) -> None:
        self._say()
        self.query_one("#path", Input).focus()

    @property
    def filtered(self) -> bool:
        boxes = self.query("#filtered")
        return bool(boxes) and boxes.first(Checkbox).value

    def on_checkbox_changed(self, _event: Checkbox.Changed) -> None:
        self._say()

    def _say(self) -> None:
        """What the export will write, in words, as the choice changes."""
        text = ("Writes only the matching records, from the whole log: a subset, which 'tbx audit verify' "
                "cannot check." if self.filtered else
                "Writes every record of the log" + (", not only the filtered ones" if self.filters else "") +
                ": 'tbx audit verify' can check the copy later.")
        self.query_one("#what", Static).update(text)

    def _submit(self) -> None:
        text = self.query_one("#path", Input).value
        problem = path_problem(text)
        if problem:
            self.query_one("#problem", Static).update(problem)
            return
        self.dismiss(ExportRequest(Path(text.strip()).expanduser(), self.filtered))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
