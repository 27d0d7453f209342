"""A table whose columns fit the screen: narrow terminals shrink the least useful
columns first, wide ones give name columns the width their names need.

Textual's DataTable has fixed or content-wide columns and nothing in between: at 80
columns the last ones (an audit record's target, a server's memory) fall off the
edge, at 200 a fixed-width name column cuts names beside empty space. Here every
column says what it wants (a fixed width for live values, which must never resize,
or its content's width for names) and how narrow it may get; the table works out the
widths each time its size or its content changes. Cells that may be cut say so with an
ellipsis (``Cut``) or pick a shorter form (``Choice``: a date without its year).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.style import Style
from rich.text import Text
from textual.widgets._data_table import RowKey

from console.tui.widgets.nav_table import NavTable


@dataclass(frozen=True)
class Col:
    key: str
    label: str
    width: int | None = None
    """Fixed width (live values: a refresh never moves the columns); None: as wide as
    the widest cell."""
    least: int | None = None
    """How narrow the column may get when the table is too narrow for every column;
    None: never narrower than it wants."""
    short: str | None = None
    """The heading once the column is narrower than ``label``."""
    yields: int = 0
    """Among the columns that may shrink, the higher gives up its width first."""
    drop: bool = False
    """Whether the column goes altogether when shrinking every column is not enough (a
    description the detail pane shows anyway)."""


def fit_widths(columns: Sequence[Col], wants: Sequence[int], available: int, padding: int = 1) -> list[int]:
    """Each column's width: what it wants, less what the columns that may shrink give
    up, the most yielding first, until the whole row fits in ``available`` cells (each
    column also takes ``padding`` on both sides). A column that may go goes (width 0)
    when its turn to shrink is not enough, and what that frees goes back to the columns
    shrunk before it. Past every column's ``least`` the table scrolls."""
    widths = list(wants)
    over = sum(widths) + 2 * padding * len(widths) - available
    order = sorted(range(len(columns)), key=lambda i: (-columns[i].yields, -i))
    shrunk: list[int] = []
    for i in order:
        least = columns[i].least
        if over <= 0:
            break
        if least is None:
            continue
        give = min(over, max(0, widths[i] - least))
        widths[i] -= give
        over -= give
        if over > 0 and columns[i].drop:
            over -= widths[i]
            widths[i] = 0
        elif give:
            shrunk.append(i)
    for i in reversed(shrunk):
        if over >= 0:
            break
        back = min(-over, wants[i] - widths[i])
        widths[i] += back
        over += back
    return widths


def heading(col: Col, width: int) -> str:
    """The column's heading in ``width`` cells: its label, its short label, or cut."""
    for label in (col.label, col.short):
        if label is not None and len(label) <= width:
            return label
    shortest = col.short or col.label
    return shortest[: width - 1] + "…" if width > 1 else ""


@dataclass(frozen=True, eq=False)
class Cut:
    """Text that fits its cell: cut with an ellipsis when the cell is narrower, by
    default in the middle (``files/sea…_files``) so both a name's server and its end
    stay readable. A cell is its text: ``str()`` gives it whole and it equals it, so
    sorting, filters and whoever reads the table see what the user named."""

    text: str | Text
    style: str | Style = ""
    where: str = "middle"
    """Where the cut goes: ``middle``, ``end`` (prose), or ``start`` (a path whose end matters)."""

    @property
    def plain(self) -> str:
        return self.text.plain if isinstance(self.text, Text) else self.text

    def __str__(self) -> str:
        return self.plain

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Cut):
            return (self.text, self.style, self.where) == (other.text, other.style, other.where)
        return self.plain == other if isinstance(other, str) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.plain)

    def __lt__(self, other: object) -> bool:  # a table sorted by this column sorts by the text
        return self.plain < str(other)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(min(len(self.plain), 1), len(self.plain))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        text = self.text.copy() if isinstance(self.text, Text) else Text(self.text, style=self.style)
        text.no_wrap, text.end = True, ""
        yield cut(text, options.max_width, self.where)


def cut(text: Text, width: int, where: str = "middle") -> Text:
    """``text`` in at most ``width`` cells, an ellipsis where it was cut (its styles kept)."""
    size = len(text.plain)
    if size <= width:
        return text
    if width <= 1:
        return text[:width]
    ellipsis = Text("…", style=text.style)
    if where == "end":
        return Text.assemble(text[: width - 1], ellipsis)
    if where == "start":
        return Text.assemble(ellipsis, text[size - width + 1:])
    head = (width - 1) * 2 // 5  # as grant_grid.shorten: the end tells names apart more often
    return Text.assemble(text[:head], ellipsis, text[size - (width - 1 - head):])


@dataclass(frozen=True, eq=False)
class Choice:
    """The longest of a few forms of a value that fits its cell (``2026-11-24 09:30:00``,
    ``11-24 09:30:00``, ``09:30:00``): a narrow table drops the part read least (and cuts
    the shortest with an ellipsis past that). The cell is its first, fullest form
    (``str()``, equality)."""

    forms: tuple[str, ...]
    style: str | Style = ""

    def __str__(self) -> str:
        return self.forms[0]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Choice):
            return (self.forms, self.style) == (other.forms, other.style)
        return self.forms[0] == other if isinstance(other, str) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.forms[0])

    def __lt__(self, other: object) -> bool:
        return self.forms[0] < str(other)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(len(self.forms[-1]), len(self.forms[0]))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        shown = next((form for form in self.forms if len(form) <= width), None)
        if shown is None:  # not even the shortest fits: it is cut, and says so
            yield cut(Text(self.forms[-1], style=self.style, no_wrap=True, end=""), width, "end")
        else:
            yield Text(shown, style=self.style, no_wrap=True, end="")


class FitTable(NavTable):
    """A row table with the columns ``columns``, refitted to its width as it resizes and
    as rows arrive."""

    def __init__(self, columns: Iterable[Col], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.specs: tuple[Col, ...] = tuple(columns)

    def on_mount(self) -> None:
        for col in self.specs:
            self.add_column(col.label, key=col.key, width=col.width)
        self.watch(self, "show_vertical_scrollbar", lambda _shown: self.refit(), init=False)

    def on_resize(self) -> None:
        self.refit()

    def widths(self) -> dict[str, int]:
        """The width each column has now, by key."""
        return {str(column.key.value): column.width for column in self.ordered_columns}

    def refit(self) -> None:
        """Work the widths out again for the current size and content."""
        if self._fit():
            self._clear_caches()
            super()._update_dimensions(())  # the scrollable width follows the new widths
            self.refresh()

    # DataTable measures new rows here (the content width of every column): the widths
    # follow at once, before the rows are drawn.
    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        super()._update_dimensions(new_rows)
        if self._fit():
            self._clear_caches()
            super()._update_dimensions(())

    def _fit(self) -> bool:
        """Set each column's width and heading; True when any changed."""
        available = self.scrollable_content_region.width
        if available <= 0 or len(self.columns) != len(self.specs):
            return False
        columns = self.ordered_columns
        wants = [spec.width if spec.width is not None else max(column.content_width, len(spec.label))
                 for spec, column in zip(self.specs, columns, strict=True)]
        changed = False
        for spec, column, width in zip(self.specs, columns, fit_widths(self.specs, wants, available,
                                                                       self.cell_padding), strict=True):
            label = heading(spec, width)
            if column.width != width or column.auto_width or column.label.plain != label:
                column.width, column.auto_width, column.label = width, False, Text(label)
                changed = True
        return changed
