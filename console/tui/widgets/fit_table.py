"""A table whose columns fit the screen: narrow terminals shrink the least useful
columns first, wide ones give name columns the width their names need.

Textual's DataTable has fixed or content-wide columns and nothing in between: at 80
columns the last ones (an audit record's target, a server's memory) fall off the
edge, at 200 a fixed-width name column cuts names beside empty space. Here every
column says what it wants (a fixed width for live values, which must never resize,
or its content's width for names) and how narrow it may get; the table works out the
widths each time its size or its content changes. Cells that may be cut say so with an
ellipsis (``Cut``) or pick a shorter form (``Choice``: a date without its year); both
live in table_cells.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.widgets._data_table import RowKey

from console.tui.widgets.nav_table import NavTable
from console.tui.widgets.table_cells import Choice, Cut

__all__ = ["Choice", "Col", "Cut", "FitTable", "fit_widths", "heading"]  # the cells come with the table


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
    # follow at once, before the rows are drawn. While a fill is in flight they follow its
    # first rows (those in view) and then its last: every change of widths draws the
    # whole table again, and the rows in between are out of sight.
    _fitted_fill = 0

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        super()._update_dimensions(new_rows)
        if self.filling and self._fitted_fill == self._fills:
            return
        self._fitted_fill = self._fills
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
