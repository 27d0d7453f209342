"""The grants matrix: a Line API widget that renders only the rows and columns in view.

Items (tools, resources, templates and prompts, grouped by server) × agents, or transposed. The header line(s) and the label
column stay put while the cells scroll; each visible line is built from the visible
columns only and cached by (row, scroll, width, cursor, generation), so a matrix of
100 agents × 1,000 tools opens and redraws as fast as a small one.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from itertools import accumulate
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.model import ItemKind
from console.tui.widgets.grant_grid import (
    AgentCol,
    Cell,
    GrantGrid,
    Kind,
    Mark,
    Row,
    cell_text,
    column_title,
    fit,
    row_label,
    shorten,
    utc_now,
)

_MARK_STYLE = {Mark.ON: "on", Mark.OFF: "off", Mark.GRANTED: "granted", Mark.VIA: "via",
               Mark.EXPIRED: "expired", Mark.DENIED: "expired", Mark.NONE: "none"}


class GrantMatrix(ScrollView, can_focus=True):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "grant-matrix--header", "grant-matrix--header-cursor", "grant-matrix--corner",
        "grant-matrix--label", "grant-matrix--label-cursor", "grant-matrix--toolbox", "grant-matrix--server",
        "grant-matrix--tag", "grant-matrix--on", "grant-matrix--off", "grant-matrix--granted",
        "grant-matrix--via", "grant-matrix--none", "grant-matrix--expired", "grant-matrix--warn",
        "grant-matrix--inactive", "grant-matrix--cursor",
    }
    DEFAULT_CSS = """
    GrantMatrix { height: 1fr; background: $surface; color: $foreground; }
    GrantMatrix > .grant-matrix--header { background: $panel; color: $foreground; text-style: bold; }
    GrantMatrix > .grant-matrix--header-cursor { background: $primary 35%; color: $foreground; text-style: bold; }
    GrantMatrix > .grant-matrix--corner { background: $panel; color: $text-muted; }
    GrantMatrix > .grant-matrix--label { color: $foreground; }
    GrantMatrix > .grant-matrix--label-cursor { background: $primary 20%; color: $foreground; }
    GrantMatrix > .grant-matrix--toolbox { color: $accent; text-style: bold; }
    GrantMatrix > .grant-matrix--server { color: $primary; text-style: bold; }
    GrantMatrix > .grant-matrix--tag { color: $warning; }
    GrantMatrix > .grant-matrix--on { color: $success; text-style: bold; }
    GrantMatrix > .grant-matrix--off { color: $error; text-style: bold; }
    GrantMatrix > .grant-matrix--granted { color: $success; text-style: bold; }
    GrantMatrix > .grant-matrix--via { color: $success 75%; }
    GrantMatrix > .grant-matrix--none { color: $text-muted; }
    GrantMatrix > .grant-matrix--expired { color: $error 80%; }
    GrantMatrix > .grant-matrix--warn { color: $warning; text-style: bold; }
    GrantMatrix > .grant-matrix--inactive { color: $text-disabled; text-style: strike; }
    GrantMatrix > .grant-matrix--cursor { background: $block-cursor-blurred-background; }
    GrantMatrix:focus > .grant-matrix--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground; text-style: bold;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1, 0)", "Up", id="matrix.up", show=False, tooltip="Cursor up"),
        Binding("down", "move(1, 0)", "Down", id="matrix.down", show=False, tooltip="Cursor down"),
        Binding("left", "move(0, -1)", "Left", id="matrix.left", show=False, tooltip="Cursor left"),
        Binding("right", "move(0, 1)", "Right", id="matrix.right", show=False, tooltip="Cursor right"),
        Binding("pageup", "page(-1)", "Page up", id="matrix.page_up", show=False, tooltip="A page up"),
        Binding("pagedown", "page(1)", "Page down", id="matrix.page_down", show=False, tooltip="A page down"),
        Binding("home", "edge(-1)", "Top", id="matrix.top", show=False, tooltip="First row"),
        Binding("end", "edge(1)", "Bottom", id="matrix.bottom", show=False, tooltip="Last row"),
    ]

    @dataclass
    class CursorMoved(Message):
        matrix: GrantMatrix
        row: Row | None
        agent: AgentCol | None

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.grid: GrantGrid | None = None
        self.transposed = False
        self.cursor = (0, 0)
        """(display row, display column)."""
        self._generation = 0
        self._lines: LRUCache[tuple[object, ...], Strip] = LRUCache(512)
        self._styles: dict[tuple[object, ...], Style] = {}
        self._label_width = 0
        self._laid_out_for = 0
        """The width the caps on names were worked out for."""
        self._header_height = 1
        self._widths: list[int] = []
        self._offsets: list[int] = [0]
        self._groups: list[int] = []
        """Transposed: the index of the first column of each column's server group."""

    # -- the data ----------------------------------------------------------------------------

    @property
    def display_rows(self) -> list[Row] | list[AgentCol]:
        if self.grid is None:
            return []
        return self.grid.agents if self.transposed else self.grid.rows

    @property
    def display_cols(self) -> list[Row] | list[AgentCol]:
        if self.grid is None:
            return []
        return self.grid.rows if self.transposed else self.grid.agents

    def pair(self, r: int, c: int) -> tuple[Row, AgentCol]:
        rows, cols = self.display_rows, self.display_cols
        if self.transposed:
            return cols[c], rows[r]  # type: ignore[return-value]
        return rows[r], cols[c]  # type: ignore[return-value]

    @property
    def current(self) -> tuple[Row, AgentCol] | None:
        r, c = self.cursor
        if r < len(self.display_rows) and c < len(self.display_cols):
            return self.pair(r, c)
        return None

    def show(self, grid: GrantGrid | None) -> None:
        """Show ``grid`` (a new read of the vault), keeping the cursor on the same row and agent."""

        def replace() -> None:
            self.grid = grid

        self._keeping_cursor(replace)

    def set_filter(self, text: str) -> None:
        """Filter the grid's rows and agents, keeping the cursor on its cell when it stays in view."""
        if self.grid is not None:
            self._keeping_cursor(partial(self.grid.set_filter, text))

    def set_transposed(self, transposed: bool) -> None:
        def swap() -> None:
            self.transposed = transposed
            self.scroll_to(0, 0, animate=False, immediate=True)

        self._keeping_cursor(swap)

    def _keeping_cursor(self, change: Callable[[], None]) -> None:
        where = self.current
        change()
        self._layout()
        if where is not None:
            self.move_to(where[0].key, where[1].id)
        else:
            self._set_cursor(0, 0)

    def move_to(self, row_key: str, agent_id: str) -> None:
        rows = [r.key for r in self.grid.rows] if self.grid else []
        agents = [a.id for a in self.grid.agents] if self.grid else []
        r = rows.index(row_key) if row_key in rows else min(self.cursor[1 if self.transposed else 0], len(rows) - 1)
        a = agents.index(agent_id) if agent_id in agents else min(self.cursor[0 if self.transposed else 1],
                                                                   len(agents) - 1)
        self._set_cursor(*((a, r) if self.transposed else (r, a)))

    def cells_changed(self) -> None:
        """The grants changed (the rows and agents did not): draw again."""
        self._generation += 1
        self.refresh()
        self._announce()

    # -- geometry ----------------------------------------------------------------------------

    def _layout(self) -> None:
        self._generation += 1
        grid = self.grid
        if grid is None:
            self._widths, self._offsets, self._groups = [], [0], []
            self.virtual_size = Size(0, 0)
            self.refresh()
            return
        names = max((len(a.name) for a in grid.all_agents), default=8)
        # Labels and columns have caps so that a long name cannot push the grants out of
        # view: labels up to 46 cells (past that the agents scroll), more on a screen wide
        # enough that the agents' columns leave it, so names are cut only when they must be.
        room = self.scrollable_content_region.width or self.app.size.width
        if self.transposed:
            self._header_height = 2
            self._label_width = min(max(names + 10, 18), max(44, room // 4)) + 2
            self._widths = [max(14, min(len(column_title(row)[1]), 22)) + 2 for row in grid.rows]
            self._groups = []
            for index, row in enumerate(grid.rows):
                same = index and grid.rows[index - 1].server_id == row.server_id
                self._groups.append(self._groups[-1] if same else index)
        else:
            self._header_height = 1
            longest = max((len(row_label(r, grid.toolbox)[0]) + len(row_label(r, grid.toolbox)[1]) + 2
                           for r in grid.all_rows), default=20)
            agents = max(1, len(grid.agents))
            beside = room - agents * (max(14, min(names, 18)) + 2) - 2  # what the agents leave the labels
            self._label_width = min(max(longest, 26), max(46, beside)) + 2
            share = (room - self._label_width) // agents - 2
            self._widths = [max(14, min(names, max(18, share))) + 2] * len(grid.agents)
            self._groups = []
        self._offsets = [0, *accumulate(self._widths)]
        self.virtual_size = Size(self._label_width + self._offsets[-1],
                                 self._header_height + len(self.display_rows))
        self.refresh()

    # -- the cursor --------------------------------------------------------------------------

    def _set_cursor(self, r: int, c: int) -> None:
        rows, cols = len(self.display_rows), len(self.display_cols)
        r = max(0, min(r, rows - 1))
        c = max(0, min(c, cols - 1))
        if (r, c) != self.cursor:
            self.cursor = (r, c)
            self.refresh()
        self._scroll_to_cursor()
        self._announce()

    def _announce(self) -> None:
        current = self.current
        self.post_message(self.CursorMoved(self, *(current or (None, None))))

    def _scroll_to_cursor(self) -> None:
        r, c = self.cursor
        width, height = self.scrollable_content_region.size
        view_h = max(1, height - self._header_height)
        view_w = max(1, width - self._label_width)
        x, y = self.scroll_offset
        if r < y:
            y = r
        elif r >= y + view_h:
            y = r - view_h + 1
        if self._widths and c < len(self._widths):
            left, right = self._offsets[c], self._offsets[c + 1]
            if left < x:
                x = left
            elif right > x + view_w:
                x = max(0, right - view_w)
        if (x, y) != tuple(self.scroll_offset):
            self.scroll_to(x, y, animate=False, immediate=True)

    def action_move(self, dr: int, dc: int) -> None:
        self._set_cursor(self.cursor[0] + dr, self.cursor[1] + dc)

    def action_page(self, direction: int) -> None:
        step = max(1, self.scrollable_content_region.height - self._header_height - 1)
        self._set_cursor(self.cursor[0] + direction * step, self.cursor[1])

    def action_edge(self, direction: int) -> None:
        self._set_cursor(0 if direction < 0 else len(self.display_rows) - 1, self.cursor[1])

    def on_resize(self, event: events.Resize) -> None:
        if self.grid is not None and event.size.width != self._laid_out_for:
            self._laid_out_for = event.size.width
            self._layout()  # the caps on names follow the width
        self._scroll_to_cursor()

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        x, y = offset
        scroll_x, scroll_y = self.scroll_offset
        r = self.cursor[0] if y < self._header_height else y - self._header_height + scroll_y
        c = self.cursor[1] if x < self._label_width else bisect_right(
            self._offsets, x - self._label_width + scroll_x) - 1
        self._set_cursor(r, c)

    # -- drawing -----------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._lines.clear()

    def _style(self, *names: str) -> Style:
        """The combined style of some component classes (later ones win), cached."""
        key = (*names, self.has_focus)
        found = self._styles.get(key)
        if found is None:
            found = self.rich_style
            for name in names:
                found = found + self.get_component_rich_style(f"grant-matrix--{name}")
            self._styles[key] = found
        return found

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_x, scroll_y = self.scroll_offset
        if y < self._header_height:
            key: tuple[object, ...] = ("h", y, scroll_x, width, self.cursor[1], self.has_focus, self._generation)
            row = -1
        else:
            row = scroll_y + y - self._header_height
            if row >= len(self.display_rows):
                return Strip.blank(width, self.rich_style)
            cursor_col = self.cursor[1] if row == self.cursor[0] else -1
            key = ("r", row, scroll_x, width, cursor_col, self.has_focus, self._generation)
        cached = self._lines.get(key)
        if cached is None:
            cached = self._header_line(y, scroll_x, width) if row < 0 else self._row_line(row, scroll_x, width)
            self._lines[key] = cached
        return cached

    def _visible_columns(self, scroll_x: int, span: int) -> range:
        first = max(0, bisect_right(self._offsets, scroll_x) - 1)
        last = bisect_right(self._offsets, scroll_x + span - 1)
        return range(first, min(last, len(self._widths)))

    def _join(self, label: list[Segment], cells: list[Segment], first: int, scroll_x: int, width: int,
              fill: Style) -> Strip:
        span = width - self._label_width
        start = scroll_x - (self._offsets[first] if self._widths else 0)
        body = Strip(cells).crop_extend(start, start + max(0, span), fill) if span > 0 else Strip([])
        return Strip.join([Strip(label), body]).crop_extend(0, width, fill)

    def _header_line(self, y: int, scroll_x: int, width: int) -> Strip:
        grid = self.grid
        header = self._style("header")
        corner_text = "" if grid is None else (
            (f" {grid.toolbox}", " agents ╲ items")[y] if self.transposed else f" {grid.toolbox}: items ╲ agents")
        label = [Segment(fit(corner_text, self._label_width), self._style("corner"))]
        columns = self._visible_columns(scroll_x, width - self._label_width)
        cells: list[Segment] = []
        cols = self.display_cols
        for c in columns:
            w = self._widths[c]
            style = self._style("header", "header-cursor") if c == self.cursor[1] else header
            if not self.transposed:
                agent: AgentCol = cols[c]  # type: ignore[assignment]
                text = fit(f" {agent.name}", w)
                cells.append(Segment(text, style + Style(dim=True, italic=True) if agent.disabled else style))
            elif y == 0:
                group = self._groups[c]
                if c != columns.start and group != c:
                    continue  # drawn with its group's first visible column
                end = c
                while end + 1 < len(self._widths) and self._groups[end + 1] == group:
                    end += 1
                span = self._offsets[end + 1] - self._offsets[c]
                lead = max(0, scroll_x - self._offsets[c]) if c == columns.start else 0  # title stays in view
                title = column_title(cols[group])[0]  # type: ignore[arg-type]
                cells.append(Segment(" " * lead + fit(f" {title}", span - lead), self._style("header", "server")))
            else:
                cells.append(Segment(fit(f" {column_title(cols[c])[1]}", w), style))  # type: ignore[arg-type]
        return self._join(label, cells, columns.start if columns else 0, scroll_x, width, header)

    def _label(self, r: int) -> list[Segment]:
        grid = self.grid
        assert grid is not None
        on_cursor = r == self.cursor[0]
        base = ("label", "label-cursor") if on_cursor else ("label",)
        if self.transposed:
            agent: AgentCol = self.display_rows[r]  # type: ignore[assignment]
            text, tag, kind = agent.name, "disabled" if agent.disabled else "", ()
        else:
            row: Row = self.display_rows[r]  # type: ignore[assignment]
            text, tag = row_label(row, grid.toolbox)
            kind = {Kind.TOOLBOX: ("toolbox",), Kind.SERVER: ("server",), Kind.TOOL: ()}[row.kind]
            if row.item is not ItemKind.TOOL:  # a long URI keeps its scheme and its end
                text = "  " + shorten(row.tool, self._label_width - 2 - (len(tag) + 1 if tag else 0) - 3)
        room = self._label_width - 2
        main = fit(f" {text}", room - (len(tag) + 1 if tag else 0))
        segments = [Segment(main, self._style(*base, *kind))]
        if tag:
            tag_style = self._style(*base, "tag") if kind == () else self._style(*base, "none")
            segments.append(Segment(fit(f" {tag}", len(tag) + 1), tag_style))
        segments.append(Segment("  ", self._style(*base)))
        return segments

    def _cell_style(self, cell: Cell, on_cursor: bool) -> Style:
        names = [_MARK_STYLE[cell.mark]]
        if cell.granted and cell.mark not in (Mark.ON, Mark.OFF):
            if cell.ineffective:
                names.append("warn")
            if cell.inactive:
                names.append("inactive")
            if cell.ask:
                names.append("tag")  # waits for the owner: the warning colour
        if on_cursor:
            names.append("cursor")
        style = self._style(*names)
        return style + Style(dim=True) if cell.disabled and not on_cursor else style

    def _row_line(self, r: int, scroll_x: int, width: int) -> Strip:
        grid = self.grid
        assert grid is not None
        label = self._label(r)
        columns = self._visible_columns(scroll_x, width - self._label_width)
        now = utc_now()
        cursor_col = self.cursor[1] if r == self.cursor[0] else -1
        cells: list[Segment] = []
        for c in columns:
            row, agent = self.pair(r, c)
            cell = grid.cell(row, agent, now)
            cells.append(Segment(fit(f" {cell_text(cell, now)}", self._widths[c]),
                                 self._cell_style(cell, c == cursor_col)))
        return self._join(label, cells, columns.start if columns else 0, scroll_x, width, self.rich_style)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
