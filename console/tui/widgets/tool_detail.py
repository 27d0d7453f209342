"""The selected item (tool, resource, template, prompt), in full: what the model is told,
what the scan found, what changed.

Everything a server wrote is shown as plain text with its invisible characters made
visible (``decode_hidden``): a reviewer sees what the model reads, not what a terminal
chooses to draw.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from console.trust.invisible import decode_hidden
from console.trust.pinning import definition_diff
from console.model import ItemKind
from console.tui.widgets.trust_badge import colour, kind_text, muted, severity_text, trust_text

if TYPE_CHECKING:
    from console.model import ToolDef


def heading(app: App, text: str) -> Text:
    return Text(text, style=f"bold {colour(app, 'primary')}")


def findings_table(app: App, tool: ToolDef) -> Table | Text:
    if not tool.findings:
        return muted(app, "none: the scan found nothing to review")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for finding in tool.findings:
        grid.add_row(severity_text(app, finding.severity), Text(finding.kind, style="bold"))
        grid.add_row("", Text(decode_hidden(finding.message)))
    return grid


def diff_text(app: App, tool: ToolDef) -> Text:
    diff = definition_diff(tool.previous or {}, tool.pinned_definition())
    if not diff:
        return muted(app, "the live definition renders the same as the approved one")
    added, removed, hunk = colour(app, "success"), colour(app, "error"), colour(app, "accent")
    out = Text()
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            style = "dim"
        elif line.startswith("+"):
            style = f"{added} bold"
        elif line.startswith("-"):
            style = removed
        elif line.startswith("@@"):
            style = hunk
        else:
            style = ""
        out.append(line + "\n", style=style)
    out.rstrip()
    return out


def schema_text(tool: ToolDef) -> Text:
    """A tool's input schema; for the other kinds, the whole definition (a prompt's arguments,
    a resource's URI and MIME type...)."""
    shown = (tool.input_schema or {}) if tool.kind is ItemKind.TOOL else tool.pinned_definition()
    rendered = json.dumps(shown, indent=2, sort_keys=True, ensure_ascii=False)
    return Text("\n".join(decode_hidden(line) for line in rendered.splitlines()))


def schema_title(tool: ToolDef | None) -> str:
    return "input schema" if tool is None or tool.kind is ItemKind.TOOL else f"{tool.kind.value} definition"


class ToolDetail(Horizontal):
    DEFAULT_CSS = """
    ToolDetail { height: 1fr; }
    ToolDetail VerticalScroll {
        width: 1fr; height: 1fr; padding: 0 1; border: round $panel; border-title-color: $text-muted;
    }
    ToolDetail VerticalScroll:focus { border: round $primary; border-title-color: $primary; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="definition") as left:
            left.border_title = "definition"
            yield Static("", id="definition-text")
        with VerticalScroll(id="schema") as right:
            right.border_title = "input schema"
            yield Static("", id="schema-text")

    def show(self, label: str | None, tool: ToolDef | None) -> None:
        app = self.app
        left = self.query_one("#definition-text", Static)
        right = self.query_one("#schema-text", Static)
        schema_box = self.query_one("#schema", VerticalScroll)
        if tool is None or label is None:
            left.update(muted(app, "nothing selected"))
            right.update("")
            schema_box.border_title = schema_title(None)
            return
        title = Text(label, style="bold").append("  ")
        if tool.kind is not ItemKind.TOOL:
            title.append_text(kind_text(app, tool.kind.value)).append("  ")
        title.append_text(trust_text(app, tool.trust.value))
        parts: list[Any] = [title]
        if tool.title:
            parts.append(Text(f"title: {decode_hidden(tool.title)}"))
        parts += [Text(""), heading(app, "description"),
                  Text(decode_hidden(tool.description or "")) if tool.description else muted(app, "(none)"),
                  Text(""), heading(app, f"findings ({len(tool.findings)})"), findings_table(app, tool),
                  Text(""), muted(app, f"pin sha256 {tool.pin[:16]}…")]
        if tool.approved_pin and tool.approved_pin != tool.pin:
            parts.append(muted(app, f"approved pin sha256 {tool.approved_pin[:16]}…"))
        left.update(Group(*parts))
        if tool.previous is not None and tool.approved_pin != tool.pin:
            schema_box.border_title = "changed since approval: approved → live"
            right.update(Group(diff_text(app, tool), Text(""), heading(app, f"{schema_title(tool)} (live)"),
                               schema_text(tool)))
        else:
            schema_box.border_title = schema_title(tool)
            right.update(schema_text(tool))
