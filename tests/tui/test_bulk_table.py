"""Big tables fill at once: ``append_rows``/``remove_rows`` leave a table exactly as
Textual's own ``add_row``/``remove_row`` do, and ``cell_width`` gives the widths rich
gives. These tests fail if a Textual or rich release changes what BulkTable relies on."""

from __future__ import annotations

import time
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text
from textual.app import App, ComposeResult
from textual.render import measure
from textual.widgets import DataTable
from textual.widgets._data_table import default_cell_formatter

from console.tui.widgets.bulk_table import BulkTable
from console.tui.widgets.fit_table import Col, FitTable
from console.tui.widgets.nav_table import NavTable
from console.tui.widgets.table_cells import Choice, Cut, cell_width, cut

CELLS: list[Any] = [
    "files/read_file", "", "  padded  ", "工具/读取文件", "🚀 launch", "👩‍💻 coder", "❤️ love", "tab\there",
    "[b]bold[/b] markup", "an :smile: code", "two\nlines", "crlf\r\nend", "café ñ",
    Text("styled", style="bold red"), Text.assemble(("✓ ", "green"), ("approved", "bold")), Text(""),
    Text("宽字符 wide"), Text("a\nlonger second line"), Text("line\u2028sep"),
    Cut("files/search_files"), Cut(Text("工具/很长的名字", style="cyan"), where="end"), Cut("", where="start"),
    Cut("🚀🚀🚀 rockets"), Choice(("2026-11-24 09:30:00", "11-24 09:30:00", "09:30:00")),
    Choice(("二〇二六年", "年")), None, 42, 3.5, True,
]


def rich_width(console: Console, cell: Any) -> int:
    """How DataTable measures a cell of a row one line high (``_update_dimensions``)."""
    if cell is None:
        return 0
    return measure(console, default_cell_formatter(cell, wrap=False, height=1), 1)


def test_the_fast_width_is_riches_width() -> None:
    console = Console(width=120)
    for cell in CELLS:
        fast = cell_width(cell)
        assert fast is None or fast == rich_width(console, cell), repr(cell)
    fast_kinds = [c for c in CELLS if type(c) in (Text, Cut, Choice) or (type(c) is str and not set("[:\n") & set(c))]
    assert all(cell_width(c) is not None for c in fast_kinds), "the usual cells take the fast way"
    assert cell_width("工具") == 4 and cell_width(Cut("🚀x")) == 3, "terminal cells, not characters"


def test_cut_counts_terminal_cells() -> None:
    wide = Text("工具工具工具工具")  # 16 cells
    for where in ("middle", "end", "start"):
        for width in range(1, 17):
            shown = cut(wide, width, where)
            assert cell_len(shown.plain) <= width, (where, width, shown.plain)
            assert width == 16 or "…" in shown.plain or width <= 1, (where, width)
    assert cut(Text("files/search_files"), 12).plain == "file…h_files", "ASCII as before"


FIT = (Col("name", "NAME", least=8, yields=2), Col("kind", "KIND", 8), Col("when", "WHEN", least=8, yields=1),
       Col("note", "NOTE", least=6, yields=3, drop=True))


def fit_row(i: int) -> tuple[str, tuple[Any, ...]]:
    name = ["files/read", "工具/读取", "🚀/launch", "[b]x[/b]"][i % 4] + f"_{i}" * (i % 7)
    return f"k{i}", (Cut(name), Text(["tool", "prompt"][i % 2], style="bold"),
                     Choice((f"2026-01-{i % 28 + 1:02} 10:00:0{i % 10}", f"10:00:0{i % 10}")),
                     Cut(f"note {i} " * (i % 5), where="end") if i % 3 else f"plain {i}")


def nav_row(i: int) -> tuple[str, tuple[Any, ...]]:
    """Names grow longer further down: a column as wide as its content widens during a fill."""
    name = f"s{i % 9}/tool_{i:04}" + "_more" * (i // 700)
    return name, (name, Text(["✓ approved", "● pending"][i % 2]))


class Pair(App[None]):
    """The same table twice: ``a`` filled and measured by Textual's methods, ``b`` by BulkTable's."""

    CSS = "DataTable { height: 1fr; }"

    def __init__(self, fitted: bool) -> None:
        super().__init__()
        self.fitted = fitted
        self.highlighted: dict[str, int] = {"a": 0, "b": 0}

    def compose(self) -> ComposeResult:
        for name in "ab":
            if self.fitted:
                yield FitTable(FIT, id=name, cursor_type="row")
            else:
                yield NavTable(id=name, cursor_type="row")

    def on_mount(self) -> None:
        if not self.fitted:
            for table in self.query(NavTable):
                table.add_columns("TOOL", "TRUST")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.highlighted[str(event.data_table.id)] += 1


def state(table: DataTable) -> dict[str, Any]:
    return {
        "rows": [(r.key.value, r.height, r.label, r.auto_height) for r in table.rows.values()],
        "data": {key.value: {c.value: v for c, v in cells.items()} for key, cells in table._data.items()},
        "locations": {key.value: index for key, index in table._row_locations._forward.items()},
        "reverse": {index: key.value for index, key in table._row_locations._reverse.items()},
        "ordered": [row.key.value for row in table.ordered_rows],
        "at": [table.get_row_at(i) for i in range(table.row_count)],
        "cursor": table.cursor_coordinate,
        "hover": table.hover_coordinate,
        "columns": [(c.key.value, c.label.plain, c.width, c.content_width, c.auto_width) for c in table.ordered_columns],
        "virtual": table.virtual_size,
        "pending": (table._require_update_dimensions, set(table._new_rows), set(table._updated_cells)),
        "lines": [table.render_line(y).text for y in range(min(table.size.height, table.row_count + 1))],
    }


async def check_pair(fitted: bool, make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = BulkTable._update_dimensions

    def measured(table: BulkTable, new_rows: Any) -> None:  # table a measures the way Textual does
        (DataTable._update_dimensions if table.id == "a" else fast)(table, new_rows)

    monkeypatch.setattr(BulkTable, "_update_dimensions", measured)
    app = Pair(fitted)
    async with app.run_test(size=(110, 30)) as pilot:
        await pilot.pause()
        a, b = app.query_one("#a", DataTable), app.query_one("#b", BulkTable)

        async def same(step: str) -> None:
            await pilot.pause()
            await pilot.pause()
            assert state(a) == state(b), step
            assert app.highlighted["a"] == app.highlighted["b"], step

        first = [make(i) for i in range(300)]
        for key, cells in first:
            a.add_row(*cells, key=key)
        assert [k.value for k in b.append_rows(first)] == [k for k, _ in first]
        await same("first fill")
        assert b.row_count == 300 and app.highlighted["b"] == 1
        a.move_cursor(row=250)
        b.move_cursor(row=250)
        more = [make(i) for i in range(300, 420)]
        for key, cells in more:
            a.add_row(*cells, key=key)
        b.append_rows(more)
        await same("more rows")
        gone = list(dict.fromkeys([key for key, _ in (first + more)[5::3]] + [(first + more)[-2][0]]))
        for key in gone:
            a.remove_row(key)
        b.remove_rows(gone)
        await same("rows removed")
        for table in (a, b):  # as Tools sorts: two columns through a key; as Try: one column's cells
            if fitted:
                table.sort("name", "kind", key=lambda cells: (str(cells[0])[::-1], str(cells[1])), reverse=True)
            else:
                table.sort(table.ordered_columns[0].key, reverse=True)
        await same("sorted")
        back = [make(i) for i in range(1000, 1010)]
        for key, cells in back:
            a.add_row(*cells, key=key)
        b.append_rows(back)
        await same("added after a sort")
        a.clear()
        b.clear()
        for key, cells in first[:3]:
            a.add_row(*cells, key=key)
        b.append_rows(first[:3])
        await same("refilled after clear")
        assert b.append_rows([]) == [] and b.remove_rows([]) is None
        await same("nothing added or removed")


async def test_bulk_fill_leaves_a_fitted_table_as_add_row_does(monkeypatch: pytest.MonkeyPatch) -> None:
    await check_pair(True, fit_row, monkeypatch)


async def test_bulk_fill_leaves_a_plain_table_as_add_row_does(monkeypatch: pytest.MonkeyPatch) -> None:
    await check_pair(False, nav_row, monkeypatch)


async def test_bulk_fill_refuses_what_add_row_refuses() -> None:
    from textual.widgets._data_table import DuplicateKey, RowDoesNotExist

    app = Pair(False)
    async with app.run_test(size=(80, 20)) as pilot:
        await pilot.pause()
        table = app.query_one("#b", BulkTable)
        table.append_rows([nav_row(1)])
        with pytest.raises(DuplicateKey):
            table.append_rows([nav_row(1)])
        with pytest.raises(ValueError):
            table.append_rows([("x", ("a", "b", "c"))])
        with pytest.raises(RowDoesNotExist):
            table.remove_rows(["nope"])


class Filling(App[None]):
    """A long list filled with ``fill``; ``x`` notes how many rows were in when it was handled."""

    BINDINGS = [("x", "note", "Note")]
    CSS = "NavTable { width: 40; height: 8; }"  # as Try's list: its columns widen, the table does not

    def __init__(self) -> None:
        super().__init__()
        self.noted: list[int] = []
        self.drawn: list[int] = []

    def compose(self) -> ComposeResult:
        yield NavTable(id="a", cursor_type="row")
        yield NavTable(id="b", cursor_type="row")

    def on_mount(self) -> None:
        for table in self.query(NavTable):
            table.add_columns("TOOL", "TRUST")

    def action_note(self) -> None:
        self.noted.append(self.query_one("#b", NavTable).row_count)


def slowly(count: int, start: int = 0) -> Any:
    """Rows that take a while to build, as a screen's do."""
    for i in range(start, start + count):
        time.sleep(0.00005)
        yield nav_row(i)


async def test_a_long_fill_shows_the_rows_in_view_at_once_and_answers_keys_meanwhile() -> None:
    app = Filling()
    async with app.run_test(size=(80, 20)) as pilot:
        await pilot.pause()
        a, b = app.query_one("#a", NavTable), app.query_one("#b", NavTable)
        for key, cells in slowly(3000):
            a.add_row(*cells, key=key)
        b.fill(slowly(3000))
        assert 0 < b.row_count < 3000 and b.row_count >= b.size.height and b.filling
        await pilot.press("x")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.noted and app.noted[0] < 3000, "the key was answered before the fill ended"
        assert not b.filling and b.row_count == 3000
        assert state(a) == state(b)


async def test_whatever_changes_the_rows_during_a_fill_sees_them_all() -> None:
    app = Filling()
    async with app.run_test(size=(80, 20)) as pilot:
        await pilot.pause()
        table = app.query_one("#b", NavTable)
        keys = [key for key, _ in slowly(500)]
        table.fill(slowly(500))
        table.fill(slowly(100, 500))  # joins the rows still to come
        assert table.filling
        table.append_rows([nav_row(900)])  # after all of them, none twice
        assert not table.filling
        assert [row.key.value for row in table.ordered_rows] == keys + [k for k, _ in slowly(100, 500)] + [nav_row(900)[0]]
        table.fill(slowly(500, 1000))
        table.remove_rows([nav_row(1494)[0]])  # a row not added yet
        assert table.row_count == 1100 and nav_row(1494)[0] not in table.rows
        table.fill(slowly(500, 2000))
        table.sort(table.ordered_columns[0].key, reverse=True)
        assert table.row_count == 1600
        assert table.get_row_at(0)[0] == max(str(table.get_row_at(i)[0]) for i in range(1600))
        table.fill(slowly(500, 3000))
        table.clear()  # what was to come goes too
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert table.row_count == 0 and not table.filling
        table.focus()
        await pilot.pause()
        table.fill(slowly(500, 4000))
        await pilot.press("end")  # the last of them all
        assert table.cursor_row == 499 and not table.filling


async def test_a_resize_that_keeps_the_width_draws_no_line_again(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[object] = []
    draw = DataTable._render_line_in_row

    def counted(table: DataTable, *args: Any, **kwargs: Any) -> Any:
        drawn.append(args[0])
        return draw(table, *args, **kwargs)

    monkeypatch.setattr(DataTable, "_render_line_in_row", counted)

    def lines(table: DataTable) -> list[str]:
        return [table.render_line(y).text for y in range(table.size.height)]

    def fresh(table: DataTable) -> list[str]:  # every line drawn from nothing
        table._update_count += 1
        table._clear_caches()
        return lines(table)

    app = Pair(False)
    async with app.run_test(size=(80, 30)) as pilot:
        table = app.query_one("#b", NavTable)
        table.append_rows(nav_row(i) for i in range(100))
        table.styles.height = "1fr"
        await pilot.pause()
        shown = lines(table)
        drawn.clear()
        await pilot.resize_terminal(80, 24)  # shorter, as wide
        await pilot.pause()
        table.refresh()  # as rows coming in do: drawn again from DataTable's caches
        await pilot.pause()
        assert drawn == [] and lines(table) == shown[:table.size.height]
        assert lines(table) == fresh(table)
        drawn.clear()
        await pilot.resize_terminal(100, 24)  # wider: every line again
        await pilot.pause()
        assert drawn and lines(table) == fresh(table) and len(lines(table)[1]) == 100


async def test_a_fitted_table_fits_the_rows_in_view_first_and_all_its_rows_in_the_end(
        monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[tuple[bool, int]] = []
    render_lines = BulkTable.render_lines

    def noted(table: BulkTable, crop: Any) -> Any:
        if table.id == "b" and table.filling:
            drawn.append((any(c.auto_width for c in table.ordered_columns),
                          sum(c.get_render_width(table) for c in table.ordered_columns)))
        return render_lines(table, crop)

    monkeypatch.setattr(BulkTable, "render_lines", noted)

    def rows() -> Any:
        for i in range(600):
            time.sleep(0.0001)
            yield fit_row(i)

    app = Pair(True)
    async with app.run_test(size=(70, 30)) as pilot:
        await pilot.pause()
        a, b = app.query_one("#a", FitTable), app.query_one("#b", FitTable)
        a.append_rows(rows())
        b.fill(rows(), total=600)
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert drawn and all(not auto and width <= b.scrollable_content_region.width for auto, width in drawn), \
            "drawn fitted to the screen while the fill went on"
        assert b.widths() == a.widths() and state(a) == state(b), "fitted to every row in the end"
