"""Big tables answer at once: with hundreds of tools, Tools and Try draw the rows in view first
and add the rest on the next turns of the event loop; a key pressed meanwhile is
answered between two chunks, and a refresh or a filter typed during the fill leaves
every row once, in its place."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from textual import events
from textual.app import App
from textual.screen import Screen
from textual.widgets import DataTable, Input

from console.tui.backend import Backend
from console.tui.screens import try_tool
from console.tui.screens.tools import ToolsScreen
from console.tui.screens.try_tool import TryScreen
from console.tui.widgets.bulk_table import BulkTable
from tests.support.bigvault import generate_big_vault
from tests.support.tui import still_app

SIZE = (120, 36)
TOOLS = 400
"""Enough for a fill that spans many turns of the loop: each row takes a while to build
here (``slowed``), and sleeps, so the pilot sees the loop idle between two chunks and
presses its keys during the fill."""


@pytest.fixture
def big(seeded: Backend) -> Backend:
    generate_big_vault(seeded.workspace, 1, TOOLS, toolbox="local")
    return seeded


@pytest.fixture
def first_drawn(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many rows each table had when it was first drawn, by id."""
    seen: dict[str, int] = {}
    render_lines = BulkTable.render_lines

    def noted(table: BulkTable, crop: Any) -> Any:
        seen.setdefault(str(table.id), table.row_count)
        return render_lines(table, crop)

    monkeypatch.setattr(BulkTable, "render_lines", noted)
    return seen


def slowed(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> None:
    """Each row takes 5 ms more to build: the fill spans two seconds or so."""
    build = getattr(owner, name)

    def slow(*args: Any) -> Any:
        time.sleep(0.005)
        return build(*args)

    monkeypatch.setattr(owner, name, slow)


def noting(monkeypatch: pytest.MonkeyPatch, owner: type, name: str, table_id: str = "tools") -> list[bool]:
    """Whether the table was still filling each time ``owner.name`` ran (a key's handler)."""
    seen: list[bool] = []
    handler = getattr(owner, name)

    def noted(screen: Any, *args: Any) -> Any:
        seen.append(screen.query_one(f"#{table_id}", BulkTable).filling)
        return handler(screen, *args)

    monkeypatch.setattr(owner, name, noted)
    return seen


def deliver(app: App, *keys: str) -> None:
    """Keys as a terminal delivers them: at once, whatever the console is doing (the
    pilot's press waits for the app to go idle, which a fill in flight never is)."""
    for key in keys:
        event = events.Key(key, key if len(key) == 1 else None)
        event.set_sender(app)
        assert app._driver is not None
        app._driver.send_message(event)


async def until(what: str, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not done():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.001)


async def filling(app: App, screen: type[Screen]) -> BulkTable:
    """The table of ``screen`` once it is in front and a fill is in flight."""
    def tables() -> list[BulkTable]:
        return list(app.screen.query("#tools").results(BulkTable)) if isinstance(app.screen, screen) else []

    await until(f"{screen.__name__} fills its table", lambda: bool(tables()) and tables()[0].filling)
    return tables()[0]


def keys(table: DataTable) -> list[str]:
    return [str(row.key.value) for row in table.ordered_rows]


async def settle(app: Any, pilot: Any) -> None:
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def test_tools_draws_the_rows_in_view_first_and_answers_keys_during_the_fill(
        big: Backend, first_drawn: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    slowed(monkeypatch, ToolsScreen, "_row")
    moves = noting(monkeypatch, ToolsScreen, "on_data_table_row_highlighted")
    reads = noting(monkeypatch, ToolsScreen, "_render_rows")
    app = still_app(big)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        deliver(app, "3")
        table = await filling(app, ToolsScreen)
        screen = app.screen
        assert isinstance(screen, ToolsScreen)
        deliver(app, "down", "down")
        await until("the cursor moved", lambda: table.cursor_row == 2)
        assert moves[-1] is True, "the keys were answered between two chunks of the fill"
        deliver(app, "ctrl+r")
        await until("the refresh", lambda: len(reads) == 2)
        assert reads == [False, True], "the refresh came during the fill"
        await settle(app, pilot)
        assert table.size.height <= first_drawn["tools"] < TOOLS, "the rows in view were drawn first"
        order = sorted(screen.tools, key=lambda key: screen._place(screen.tools[key]))
        assert not table.filling and keys(table) == order and table.row_count == len(screen.tools) > TOOLS
        assert table.cursor_row == 2 and screen.selected is not None and screen.selected.key == order[2]


async def test_a_filter_typed_during_the_fill_of_tools_sees_every_row(
        big: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    slowed(monkeypatch, ToolsScreen, "_row")
    reads = noting(monkeypatch, ToolsScreen, "_render_rows")
    app = still_app(big)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        deliver(app, "3")
        table = await filling(app, ToolsScreen)
        screen = app.screen
        assert isinstance(screen, ToolsScreen)
        deliver(app, "slash")
        await until("the filter opened", lambda: isinstance(app.focused, Input))
        deliver(app, *"srv-019/")
        await until("the first letter", lambda: len(reads) >= 2)
        assert reads[:2] == [False, True], "the first letter came during the fill"
        await settle(app, pilot)
        await settle(app, pilot)
        shown = keys(table)
        assert len(shown) == len(set(shown)) == 20
        assert all(screen.label(screen.tools[key]).startswith("srv-019/") for key in shown)
        monkeypatch.undo()  # rows as quick as they are again: the list comes back at each backspace
        await pilot.press(*["backspace"] * 8)
        await settle(app, pilot)
        assert keys(table) == sorted(screen.tools, key=lambda key: screen._place(screen.tools[key]))


async def test_try_draws_the_rows_in_view_first_and_a_refresh_during_the_fill_adds_none_twice(
        big: Backend, first_drawn: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    slowed(monkeypatch, try_tool, "trust_cell")
    moves = noting(monkeypatch, TryScreen, "on_data_table_row_highlighted")
    reads = noting(monkeypatch, TryScreen, "_show_rows")
    app = still_app(big)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        deliver(app, "7")
        table = await filling(app, TryScreen)
        screen = app.screen
        assert isinstance(screen, TryScreen)
        deliver(app, "down")
        await until("the cursor moved", lambda: table.cursor_row == 1)
        deliver(app, "ctrl+r")
        await until("the refresh", lambda: len(reads) == 2)
        assert moves[-1] is True and reads == [False, True], "the key and the refresh came during the fill"
        await settle(app, pilot)
        assert table.size.height <= first_drawn["tools"] < TOOLS
        tools = [key for key, _ in screen._tools()]
        assert not table.filling and keys(table) == tools and len(tools) >= TOOLS
        assert screen.tool_key == keys(table)[table.cursor_row] == tools[1]


async def test_try_keeps_its_list_in_order_and_its_cursor_on_the_tool_shown_through_a_filter(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("7")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, TryScreen)
        table = screen.query_one("#tools", DataTable)
        listed = keys(table)
        assert listed == sorted(listed) and "time/get_current_time" in listed
        table.focus()
        await pilot.press("end")
        assert screen.tool_key == listed[-1]
        await pilot.press("slash", *"time")
        await settle(app, pilot)
        assert keys(table) == ["time/convert_time", "time/get_current_time"]
        await pilot.press(*["backspace"] * 4)
        await settle(app, pilot)
        assert keys(table) == listed, "the rows the filter brought back are in their place"
        assert keys(table)[table.cursor_row] == screen.tool_key, "the cursor is on the tool whose form is shown"
