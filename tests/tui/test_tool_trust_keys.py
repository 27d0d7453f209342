"""3 Tools: taking an approval back (u) and blocking (b), by the keys, with the agents who
lose the item named before anything changes."""

from __future__ import annotations

from textual.pilot import Pilot

from console.model import Trust
from console.tui.backend import Backend
from console.tui.modals.confirm import ConfirmModal
from tests.support.tui import still_app
from tests.tui.test_tools_screen import SIZE, open_tools, screen_text


async def pick(pilot: Pilot, words: str) -> None:
    """Filter the list down to one item, as a user does: / words enter."""
    await pilot.press("slash", *words, "enter")
    await pilot.pause()


def trust_of(backend: Backend, name: str) -> Trust:
    backend.workspace.refresh()
    return next(t.trust for t in backend.workspace.repos.tools if t.name == name)


async def test_u_takes_an_approval_back_after_naming_who_loses_it(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await open_tools(pilot)
        await pick(pilot, "get_current")
        await pilot.press("u")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        text = screen_text(app)
        assert "Take back the approval of local/time/get_current_time?" in text
        assert "claude-desktop loses it at once" in app.screen.body  # through its grant on time/*
        await pilot.press("escape")
        await pilot.pause()
        assert trust_of(seeded, "get_current_time") is Trust.APPROVED

        await pilot.press("u")
        await pilot.pause()
        await pilot.click("#yes")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert trust_of(seeded, "get_current_time") is Trust.PENDING
        assert "pending" in screen_text(app)
        assert any("approval taken back" in n.message for n in app._notifications)

        await pilot.press("u")  # nothing left to take back: said, no question
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmModal)
        assert any("is not approved" in n.message for n in app._notifications)

        await pilot.press("b")  # pending now: its holders have nothing to lose
        await pilot.pause()
        assert "claude-desktop holds a grant to it, kept." in app.screen.body  # type: ignore[attr-defined]
        await pilot.press("n")


async def test_b_blocks_after_asking_and_b_again_unblocks(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await open_tools(pilot)
        await pick(pilot, "list_directory")
        await pilot.press("b")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        assert "Block local/files/list_directory?" in screen_text(app)
        assert "No agent holds a grant to it" in app.screen.body
        app.screen.query_one("#yes").focus()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert trust_of(seeded, "list_directory") is Trust.BLOCKED
        assert "✗ blocked" in screen_text(app)

        await pilot.press("b")  # unblocking gives nothing away: no question
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmModal)
        assert trust_of(seeded, "list_directory") is Trust.PENDING
