"""``?``: every key as a user presses it, with the binding id ``[tui.keys]`` takes, in a
dialog that fits an 80x24 terminal; ids in ``[tui.keys]`` that name no binding are said."""

from __future__ import annotations

import asyncio
import re

from textual.widgets import DataTable

from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.help import HelpScreen, key_label
from console.tui.keymap import binding_ids, describe_unknown, unknown_ids
from tests.support.tui import still_app

INTERNAL = re.compile(r"left_square_bracket|right_square_bracket|question_mark|help_quit|\bslash\b|\bcolon\b")


def rows(app: ConsoleApp) -> dict[str, tuple[str, str]]:
    """Binding id -> (key, action) as the help table shows them."""
    table = app.screen.query_one("#keys", DataTable)
    found = {}
    for i in range(table.row_count):
        key, action, binding = (str(cell) for cell in table.get_row_at(i))
        if binding:
            found[binding] = (key, action)
    return found


async def test_help_fits_80_columns_with_keys_as_pressed_and_their_ids(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        dialog = app.screen.query_one(".help-dialog")
        assert dialog.region.right <= 80 and dialog.region.x >= 0, "the dialog inside the screen"
        table = app.screen.query_one("#keys", DataTable)
        assert table.virtual_size.width <= table.scrollable_content_region.width, "no column off to the right"
        shown = rows(app)
        assert shown["server.tab_previous"][0] == "[" and shown["server.tab_next"][0] == "]"
        assert shown["app.help"][0] == "?" and shown["screen.filter"][0] == "/"
        assert not [key for key, _action in shown.values() if INTERNAL.search(key)]
        text = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
        assert "nav.toolboxes" in text and "BINDING ID" in text, "the ids in view, not off-screen"
        assert "2 Servers" in text, "where the keys work: a heading row"
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_help_shows_a_remapped_key(seeded: Backend) -> None:
    seeded.settings.tui.keys["server.toggle"] = "ctrl+s"
    app = still_app(seeded)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert rows(app)["server.toggle"][0] == "ctrl+s"


async def test_an_unknown_binding_id_in_the_config_is_said_at_start(seeded: Backend) -> None:
    seeded.settings.tui.keys.update({"sever.toggle": "ctrl+s", "server.restart": "R"})
    app = still_app(seeded)
    async with app.run_test(size=(120, 36)) as pilot:
        for _ in range(100):
            if app._notifications:
                break
            await asyncio.sleep(0.05)
            await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any("'sever.toggle'" in m and "did you mean 'server.toggle'?" in m for m in messages), messages
        assert not any("server.restart" in m for m in messages)


def test_keys_read_as_pressed() -> None:
    assert key_label("question_mark") == "?"
    assert key_label("left_square_bracket") == "["
    assert key_label("escape,question_mark,q") == "esc, ?, q"
    assert key_label("ctrl+enter,f5") == "ctrl+enter, f5"
    assert key_label("ctrl+r") == "ctrl+r"


def test_the_binding_ids_are_read_from_the_sources() -> None:
    ids, patterns = binding_ids()
    assert {"app.help", "server.toggle", "grant.toggle", "audit.export", "table.top"} <= ids
    assert unknown_ids(["nav.servers", "server.toggle", "sever.toggle", "app.hepl"]) == ["sever.toggle", "app.hepl"]
    assert describe_unknown({"server.toggle": "ctrl+s"}) == ""
    assert "did you mean 'app.help'?" in describe_unknown({"app.hepl": "h"})
