"""A DataTable that takes and drops many rows at once, and fills a long list without
keeping a key waiting.

Textual's ``add_row`` sets the cursor reactive (validator, watchers) for every row, its
``remove_row`` re-indexes every remaining row for every row removed, and its idle pass
measures each new cell through rich, which asks the console for its options (a
terminal size lookup) per cell. A first visit to Tools (2,000 items), Try or Audit
spent 0.3-0.7 s of the event loop on that while a key waited. Here many rows go in or
out with one cursor update and one re-index, and the usual kinds of cell are measured
by ``cell_width`` (the same widths, without the console). ``fill`` goes further for a
list longer than the screen: the rows in view at once, the rest (built as they are
taken) a few milliseconds' worth per turn of the event loop.

This is the one place that touches DataTable's private state (``_row_locations``,
``_data``, ``rows``, ``_new_rows``, ``_update_dimensions``), mirroring ``add_row`` and
``remove_row`` of Textual 8.2: tests/tui/test_bulk_table.py compares the table after
``append_rows``, ``remove_rows`` and ``fill`` with the table after Textual's own
methods, and fails if a Textual release changes what this relies on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain, islice
from typing import Any, Self

from rich.text import TextType
from textual import events
from textual._two_way_dict import TwoWayDict
from textual.coordinate import Coordinate
from textual.geometry import Region
from textual.render import measure
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets._data_table import (CellKey, CellType, ColumnKey, DuplicateKey, Row, RowDoesNotExist, RowKey,
                                         default_cell_formatter)

from console.tui.widgets.table_cells import cell_width

Rows = Iterable[tuple[str, Sequence[CellType]]]
CHUNK = 0.004
"""Seconds of row building per turn of the event loop while a fill is in flight (its
rows are then added and measured, about as long again)."""
PAUSE = 0.010
"""At most this many seconds between two chunks (as long as the last one took)."""


class BulkTable(DataTable):
    _to_come: Iterator[tuple[str, Sequence[CellType]]] | None = None
    """The rows ``fill`` has yet to add."""
    _fills = 0
    """Fills started or ended early so far: a chunk's worker stops when it is not its own."""
    _expected = 0
    """How many rows the table will have when the fill in flight ends, if it said."""

    # -- filling -------------------------------------------------------------------------

    def fill(self, rows: Rows, total: int | None = None) -> None:
        """Append ``rows`` in order: as many as a screen shows at once now, the rest a
        chunk per turn of the event loop, so a key pressed meanwhile is answered between
        two chunks. ``rows`` may build each row as it is taken; ``total``, how many there
        are, makes the table as tall as it will be at once (its scroll bar stays put and
        the screen is not laid out again for every chunk). Any other change to the rows
        (``append_rows``, ``remove_rows``, ``sort``, ``update_cell``...) first adds what
        is still to come (``settle``); ``clear`` drops it."""
        rows = iter(rows)
        if self._to_come is not None:
            self._to_come = chain(self._to_come, rows)
            self._expected += total or 0
            return
        self._expected = self.row_count + (total or 0)
        self._append(islice(rows, max(self.app.size.height, 1)))
        following = next(rows, None)
        if following is not None:
            self._to_come = chain((following,), rows)
            self._fills += 1
            fill = self._fills
            # A worker: whoever waits for the app's workers waits for the whole list too.
            self.run_worker(self._fill_rest(fill), group="bulk-fill")

    @property
    def filling(self) -> bool:
        """Whether rows of a ``fill`` are still to come."""
        return self._to_come is not None

    def settle(self) -> None:
        """Add every row still to come, now."""
        rows, self._to_come = self._to_come, None
        if rows is not None:
            self._fills += 1
            self._append(rows)

    async def _fill_rest(self, fill: int) -> None:
        """Add what fill number ``fill`` left, a chunk at a time, until it is all in or
        something else took it (``settle``, ``clear``)."""
        await self.wait_for_refresh()  # the rows in view drawn first
        took = 0.0
        while True:
            # The loop is everyone else's at least as long as the last chunk took: a key
            # goes from the app to the screen to the focused widget in several turns of
            # the loop, and a chunk after every one of them would make it wait for many.
            await asyncio.sleep(min(took, PAUSE))
            rows = self._to_come
            if rows is None or fill != self._fills:
                return
            began = time.perf_counter()
            chunk = []
            for row in rows:
                chunk.append(row)
                if time.perf_counter() - began > CHUNK:
                    break
            else:  # all in
                self._to_come = None
            first = self.row_count
            self._append(chunk, below=True)
            if first < self.scroll_offset.y + self.size.height:  # rows come into view
                self.refresh()
            took = time.perf_counter() - began

    @property
    def _total_row_height(self) -> int:
        # DataTable's: its virtual height. While a fill is in flight, as tall as it will be.
        height = len(self._y_offsets)
        return max(height, self._expected) if self._to_come is not None else height

    # -- adding and removing many rows at once -------------------------------------------

    def append_rows(self, rows: Rows) -> list[RowKey]:
        """Add ``(key, cells)`` rows one line high at the bottom, as ``add_row`` does for
        each, with one cursor update and one refresh for them all."""
        self.settle()
        return self._append(rows)

    def _append(self, rows: Rows, below: bool = False) -> list[RowKey]:
        locations, data, meta, new = self._row_locations, self._data, self.rows, self._new_rows
        keys = [column.key for column in self.ordered_columns]
        width = len(keys)
        index = len(locations)
        was_empty = not index
        added: list[RowKey] = []
        try:
            for key, cells in rows:
                row_key = RowKey(key)
                if row_key in locations:
                    raise DuplicateKey(f"The row key {row_key!r} already exists.")
                if len(cells) != width:
                    if len(cells) > width:
                        raise ValueError("More values provided than there are columns.")
                    cells = [*cells, *[None] * (width - len(cells))]
                locations[row_key] = index
                index += 1
                data[row_key] = dict(zip(keys, cells, strict=True))
                meta[row_key] = Row(row_key, 1, None, False)
                new.add(row_key)
                added.append(row_key)
        finally:  # the rows before a refused one stay, as with add_row
            if added:
                self._added(added, was_empty, below)
        return added

    def _added(self, added: list[RowKey], was_empty: bool, below: bool) -> None:
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate  # clamped, as after add_row
        if was_empty and self.columns and self.show_cursor and self.cursor_type != "none":
            self._highlight_cursor()  # a cursor where there was none: RowHighlighted
        if below:
            # Rows a fill adds under the rows already there change no line drawn so far:
            # DataTable's drawing caches, keyed by _update_count, stay good (a line past the
            # last row is never cached), and where each new row starts goes at the end of
            # the list of where rows start (each one line high). Counting the update, as
            # add_row does, would draw every line in view again after each chunk (about a
            # millisecond a line) and list where all 2,000 rows start again.
            offsets = self._offset_cache.get(self._update_count)
            if offsets is not None:
                offsets.extend((row_key, 0) for row_key in added)
            self._ordered_row_cache.clear()
        else:
            self._update_count += 1
        self.check_idle()

    def remove_rows(self, keys: Iterable[RowKey | str]) -> None:
        """Remove the rows ``keys``, as ``remove_row`` does for each, re-indexing once."""
        self.settle()
        doomed = {key if isinstance(key, RowKey) else RowKey(key) for key in keys}
        if not doomed:
            return
        locations = self._row_locations
        missing = [key for key in doomed if key not in locations]
        if missing:
            raise RowDoesNotExist(f"Row key {missing[0]!r} is not valid.")
        self._require_update_dimensions = True
        self.check_idle()
        kept = sorted((key for key in locations if key not in doomed), key=locations.get)  # type: ignore[arg-type]
        self._row_locations = TwoWayDict({key: index for index, key in enumerate(kept)})
        for row_key in doomed:
            for column_key in self._data[row_key]:
                self._updated_cells.discard(CellKey(row_key, column_key))
            del self.rows[row_key]
            del self._data[row_key]
        self.cursor_coordinate = self.cursor_coordinate
        self.hover_coordinate = self.hover_coordinate
        self._update_count += 1
        self.refresh(layout=True)

    # -- what needs every row first --------------------------------------------------------

    def add_row(self, *cells: CellType, height: int | None = 1, key: str | None = None,
                label: TextType | None = None) -> RowKey:
        self.settle()
        return super().add_row(*cells, height=height, key=key, label=label)

    def remove_row(self, row_key: RowKey | str) -> None:
        self.settle()
        super().remove_row(row_key)

    def update_cell(self, row_key: RowKey | str, column_key: ColumnKey | str, value: CellType, *,
                    update_width: bool = False) -> None:
        self.settle()
        super().update_cell(row_key, column_key, value, update_width=update_width)

    def update_cell_at(self, coordinate: Coordinate, value: CellType, *, update_width: bool = False) -> None:
        self.settle()
        super().update_cell_at(coordinate, value, update_width=update_width)

    def sort(self, *columns: ColumnKey | str, key: Callable[[Any], Any] | None = None,
             reverse: bool = False) -> Self:
        self.settle()
        return super().sort(*columns, key=key, reverse=reverse)

    def clear(self, columns: bool = False) -> Self:
        if self._to_come is not None:  # what was still to come goes with the rest
            self._to_come = None
            self._fills += 1
        return super().clear(columns)

    # -- drawing ---------------------------------------------------------------------------

    _drawn_width: int | None = None

    def render_lines(self, crop: Region) -> list[Strip]:
        self._drawn_width = self.size.width
        return super().render_lines(crop)

    # DataTable counts every resize as an update (its _on_resize, the last handler of a
    # Resize), so every line it drew is drawn again: about a millisecond a line, and a
    # table shown for the first time is drawn before its first Resize arrives. Only the
    # width changes a line: a resize that keeps the width drawn skips that.
    def _on_resize(self, event: events.Resize) -> None:
        if self.size.width == self._drawn_width:
            event.prevent_default()

    # -- measuring -------------------------------------------------------------------------

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """DataTable's, with the widths of plain rows' cells (one line, no label) taken
        by ``cell_width``: rich's measure for any other kind of cell, and DataTable's
        own way for other rows."""
        columns = self.ordered_columns
        console = self.app.console
        widths = [column.get_render_width(self) for column in columns]
        others: list[RowKey] = []
        for row_key in new_rows:
            row = self.rows.get(row_key)
            if row is None or row_key not in self._row_locations:
                continue  # removed before the table went idle
            if row.label is not None or row.auto_height or row.height != 1:
                others.append(row_key)
                continue
            cells = self._data[row_key]
            for column in columns:
                cell = cells[column.key]
                width = cell_width(cell)
                if width is None:
                    width = measure(console, default_cell_formatter(cell, wrap=False, height=1), 1)
                if width > column.content_width:
                    column.content_width = width
        if [column.get_render_width(self) for column in columns] != widths:
            self._update_count += 1  # the columns moved: no line drawn before holds (rows a fill added did not count)
        super()._update_dimensions(others)
