"""2 Servers: what removing a server takes away, said by name; the edit form; the full
log screen — on the seeded vault (nothing live)."""

from __future__ import annotations

from textual.pilot import Pilot

from console.tui.backend import Backend
from console.tui.modals.confirm import ConfirmModal
from tests.support.tui import still_app
from tests.tui.test_servers_screen import SIZE, open_servers


async def pick(pilot: Pilot, name: str) -> None:
    """Filter the servers down to one, as a user does: / name enter."""
    await pilot.press("slash", *name, "enter")
    await pilot.pause()


async def test_removing_a_server_names_the_agents_that_lose_access(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await open_servers(pilot)
        await pick(pilot, "time")
        await pilot.press("d")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ConfirmModal) and modal.title_text == "Remove local/time?"
        assert "claude-desktop loses access to it: its grants are deleted." in modal.body
        assert "every grant" not in modal.body
        await pilot.press("escape")
        await pilot.pause()

        await pilot.press("escape")  # the filter: every server again
        await pick(pilot, "notes")
        await pilot.press("d")
        await pilot.pause()
        assert "No agent holds a grant to it." in app.screen.body  # type: ignore[attr-defined]
        await pilot.press("n")
