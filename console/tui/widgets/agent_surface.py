"""What an agent can reach, and why not the rest: the Agents screen's detail pane."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from console.services.access import AccessReport
from console.tui.widgets.grant_grid import shorten

Part = tuple[str, str]


def surface_parts(report: AccessReport, width: int = 80) -> list[Part]:
    """Per toolbox: its access, then each item (tool, resource, template, prompt) of the servers
    the agent holds a grant on, allowed or not, and why (wrapped to ``width`` under it; a long
    URI is cut in the middle)."""
    parts: list[Part] = []
    if not report.enabled:
        parts += [("✗ agent disabled", "$error bold"),
                  (f": {report.agent} reaches nothing until it is enabled again (x)\n\n", "$foreground-muted")]
    if not report.toolboxes:
        parts.append((f"{report.agent} holds no grants yet: give it some on the Grants screen (4)", "$foreground-muted"))
        return parts
    for index, box in enumerate(report.toolboxes):
        if index:
            parts.append(("\n", ""))
        parts.append((f"{box.name}  ", "bold"))
        parts.append(("✓ toolbox access\n", "$success") if box.granted else
                     ("✗ no toolbox access: every grant inside is cut off\n", "$error"))
        if not box.tools:
            parts.append(("  no tool grants here\n", "$foreground-muted"))
        for tool in box.tools:
            parts.append(("  ✓ ", "$success bold") if tool.allowed else ("  ✗ ", "$error bold"))
            room = max(20, width - 8)  # the width leaves no room for a scrollbar that appears later
            parts.append((shorten(f"{tool.server}/{tool.tool}", room), "bold" if tool.allowed else ""))
            if tool.expires is not None:
                parts.append((f"  until {datetime.fromtimestamp(tool.expires, UTC):%Y-%m-%d %H:%M} UTC", "$warning"))
            why = textwrap.fill(" ".join(shorten(word, room) for word in tool.why.split(" ")), max(20, width),
                                initial_indent="    ", subsequent_indent="    ", break_on_hyphens=False)
            parts.append((f"\n{why}\n", "$foreground-muted"))
    return parts


class AgentSurface(VerticalScroll):
    """A scrolling view of one agent's access report."""

    DEFAULT_CSS = """
    AgentSurface { height: 1fr; padding: 0 1; }
    AgentSurface > Static { width: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", id="surface-text")

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.report: AccessReport | None = None
        self.message = ""

    def show(self, report: AccessReport | None, message: str = "") -> None:
        self.report, self.message = report, message
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        body = self.query_one("#surface-text", Static)
        if self.report is None:
            body.update(Content.styled(self.message, "$foreground-muted"))
        else:
            body.update(Content.assemble(*surface_parts(self.report, self.scrollable_content_region.width - 1)))
