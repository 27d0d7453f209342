"""``a`` on Tools: approve one item (tool, resource, template, prompt), knowing exactly
what is being accepted.

Every finding is named (severity, kind, message); approving accepts exactly those kinds
and pins the definition shown. An item without findings is confirmed too, with its pin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Label, Static

from console.model import ItemKind
from console.trust.findings import blocking_kinds
from console.tui.modals.confirm import YesNoModal
from console.tui.widgets.tool_detail import findings_table

if TYPE_CHECKING:
    from console.model import ToolDef


class ApproveModal(YesNoModal):
    """Dismisses with True only on an explicit approve."""

    CSS = """
    ApproveModal .approve-dialog { width: 96; }
    ApproveModal .approve-body { height: auto; max-height: 18; margin-bottom: 1; }
    ApproveModal .accepting { color: $warning; text-style: bold; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "no", "Cancel", id="approve.cancel", tooltip="Leave the item as it is"),
        Binding("y", "yes", "Approve", id="approve.yes", show=False, tooltip="Approve, accepting every finding named"),
        Binding("n", "no", "No", id="approve.no", show=False, tooltip="Leave the item as it is"),
    ]

    def __init__(self, label: str, tool: ToolDef) -> None:
        super().__init__()
        self.label, self.tool = label, tool
        self.kinds = blocking_kinds(tool.findings)
        """The kinds approving accepts: those of the item's medium and high findings."""

    def compose(self) -> ComposeResult:
        tool, app = self.tool, self.app
        kind = tool.kind.value
        use = "call" if tool.kind is ItemKind.TOOL else "read" if kind in ("resource", "template") else "use"
        with Vertical(classes="dialog approve-dialog"):
            yield Label(f"Approve {self.label}?", classes="dialog-title")
            parts: list[object] = []
            if tool.previous is not None and tool.approved_pin != tool.pin:
                parts += [Text("Its definition changed since you approved it; the diff is on the Tools screen.",
                               style="italic"), Text("")]
            if tool.findings:
                parts += [Text(f"The scan found {len(tool.findings)} problem(s) in what this {kind} tells the model:"),
                          Text(""), findings_table(app, tool)]
            else:
                parts.append(Text("The scan found nothing in this definition."))
            parts += [Text(""), Text("Approving pins this definition:"), Text(f"sha256 {tool.pin}", style="bold"),
                      Text(f"Agents granted the {kind} can {use} it until its definition changes.")]
            with VerticalScroll(classes="approve-body"):
                yield Static(Group(*parts))  # type: ignore[arg-type]
            if self.kinds:
                yield Static(Text(f"Accepting: {', '.join(self.kinds)}"), classes="accepting")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="no")
                yield Button("Approve, accepting these" if self.kinds else "Approve", id="yes",
                             variant="error" if self.kinds else "primary")
