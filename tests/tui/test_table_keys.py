"""Home/End and g/G in the console's tables: first and last row — except that a screen's
own verb on g (Agents: show on Grants) keeps its key."""

from __future__ import annotations

from textual.widgets import DataTable

from console.tui.backend import Backend
from console.tui.screens.grants import GrantsScreen
from console.tui.widgets.nav_table import NavTable
from tests.support.tui import still_app
from tests.tui.test_tools_screen import SIZE, open_tools


async def test_home_end_and_g_G_go_to_the_first_and_last_row(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_tools(pilot)
        table = screen.query_one(DataTable)
        assert isinstance(table, NavTable) and table.has_focus and table.row_count == 8
        last = table.row_count - 1
        for key, row in (("end", last), ("home", 0), ("G", last), ("g", 0), ("down", 1), ("G", last)):
            await pilot.press(key)
            await pilot.pause()
            assert table.cursor_row == row, key


async def test_g_stays_the_screens_verb_where_the_screen_has_one(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert table.has_focus and table.row_count == 3
        await pilot.press("G")  # no verb on G here: the last row
        await pilot.pause()
        assert table.cursor_row == 2
        await pilot.press("home")
        await pilot.pause()
        assert table.cursor_row == 0
        await pilot.press("g")  # Agents' g: this agent on the Grants screen
        await pilot.pause()
        assert isinstance(app.screen, GrantsScreen)


async def test_every_table_of_the_console_is_a_nav_table(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        for digit in "1235678":
            await pilot.press(digit)
            await pilot.pause()
            tables = list(app.screen.query(DataTable))
            assert tables and all(isinstance(t, NavTable) for t in tables), digit
