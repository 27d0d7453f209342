"""What an agent can reach, and why not the rest: the Agents screen's detail pane."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

from textual import work
from textual.cache import LRUCache
from textual.content import Content
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.visual import Visual

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


def surface_lines(parts: list[Part]) -> list[list[Part]]:
    """The parts cut into screen lines (each part's text split at its newlines)."""
    lines: list[list[Part]] = [[]]
    for text, style in parts:
        first, *rest = text.split("\n")
        if first:
            lines[-1].append((first, style))
        for piece in rest:
            lines.append([(piece, style)] if piece else [])
    return lines


LAID_OUT_AT_ONCE = 200
"""Reports with fewer items than this are laid out on the loop; bigger ones in a thread."""


class AgentSurface(ScrollView, can_focus=True):
    """One agent's access report, scrolling. An agent granted whole servers can reach
    thousands of items: only the lines in view are drawn (a Static of them all was
    re-wrapped, all 17,000 lines, on every visit and resize: over a second)."""

    DEFAULT_CSS = """
    AgentSurface { height: 1fr; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.report: AccessReport | None = None
        self.message = ""
        self._lines: list[list[Part]] = []
        self._strips: LRUCache[tuple[int, int], Strip] = LRUCache(256)

    @property
    def text(self) -> str:
        """Everything the surface says, as plain text (for tests and copying)."""
        return "\n".join("".join(text for text, _style in line) for line in self._lines)

    def show(self, report: AccessReport | None, message: str = "") -> None:
        self.report, self.message = report, message
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        if self.report is None:
            self._set_lines([[(self.message, "$foreground-muted")]] if self.message else [])
            return
        width = self.scrollable_content_region.width - 1
        if sum(len(box.tools) for box in self.report.toolboxes) < LAID_OUT_AT_ONCE:
            self._set_lines(surface_lines(surface_parts(self.report, width)))
        else:
            self._lay_out(self.report, width)

    @work(thread=True, exclusive=True, exit_on_error=False, group="surface-lines")
    def _lay_out(self, report: AccessReport, width: int) -> None:
        lines = surface_lines(surface_parts(report, width))
        self.app.call_from_thread(self._laid_out, report, lines)

    def _laid_out(self, report: AccessReport, lines: list[list[Part]]) -> None:
        if report is self.report:  # not replaced by another agent's meanwhile
            self._set_lines(lines)

    def _set_lines(self, lines: list[list[Part]]) -> None:
        self._lines = lines
        self._strips.clear()
        self.virtual_size = Size(max(0, self.scrollable_content_region.width), len(lines))
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        index = self.scroll_offset.y + y
        if index >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        strip = self._strips.get((index, width))
        if strip is None:
            content = Content.assemble(*self._lines[index])
            strips = Visual.to_strips(self, content, width, 1, self.visual_style, pad=True)
            strip = strips[0] if strips else Strip.blank(width, self.rich_style)
            self._strips[(index, width)] = strip
        return strip
