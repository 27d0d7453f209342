"""The add picker under fast typing, as a real terminal delivers it: the form shows the
entry the list shows, whatever order the highlight events arrive in."""

from __future__ import annotations

from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from console.tui.backend import Backend
from console.tui.modals.add_server import AddServerModal
from tests.support.tui import still_app
from tests.tui.test_servers_screen import SIZE, open_servers


async def test_a_late_highlight_from_an_older_list_does_not_bring_its_entry_back(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await open_servers(pilot)
        await pilot.press("a")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, AddServerModal)
        options = modal.query_one("#entries", OptionList)
        first = options.get_option_at_index(0).id
        await pilot.press(*"memory")
        await pilot.pause()
        assert modal.current is not None and modal.current.id == "memory"
        # In tmux the event of the list as it was after "m" (another entry at index 0)
        # arrived after the list had changed, and the form went back to that entry.
        options.post_message(OptionList.OptionHighlighted(options, Option("stale", id=first), 0))
        await pilot.pause()
        await pilot.pause()
        assert modal.current.id == "memory" and modal.query_one("#form").border_title == "Memory — needs"
        assert len(modal.query("AddServerForm")) == 1
        await pilot.press("enter", "ctrl+s")  # to the name field, then add: what is shown is what is added
        await pilot.pause()
        assert modal.query_one("#name", Input).value.startswith("memory")


async def test_shows_that_overlap_mount_one_form_the_latest(seeded: Backend) -> None:
    import asyncio

    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await open_servers(pilot)
        await pilot.press("a")
        await pilot.pause()
        modal = app.screen
        entries = {e.id: e for e in modal.entries}
        # One keystroke each, as typed: every one starts a form before the last is mounted.
        await asyncio.gather(*(modal._show(entries[i]) for i in ("everything", "git", "time", "memory")))
        await pilot.pause()
        assert len(modal.query("AddServerForm")) == 1
        assert modal.current is entries["memory"] and modal.query_one("#form").border_title == "Memory — needs"
