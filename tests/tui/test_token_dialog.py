"""The new-token dialog driven as a user does: Enter on each focused button, or a click.

Each button must do its one thing once: Textual calls ``on_button_pressed`` of every class
in the MRO, so a subclass that also calls ``super()`` ran the base handler twice (Done
closed twice and crashed, Show toggled back, Copy config copied and then closed).
"""

from __future__ import annotations

import json

from textual.widgets import Button

from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.modals.agent_token import AgentTokenModal
from console.tui.modals.secret_once import SecretOnceModal
from console.tui.screens.agents import AgentsScreen
from tests.support.tui import still_app


async def open_token_dialog(app: ConsoleApp, pilot, name: str = "ci-bot") -> AgentTokenModal:  # noqa: ANN001
    await pilot.press("5", "a", *name, "enter")
    await app.workers.wait_for_complete()
    await pilot.pause()
    assert isinstance(app.screen, AgentTokenModal)
    return app.screen


async def focus_button(app: ConsoleApp, pilot, button_id: str) -> None:  # noqa: ANN001
    """Tab from button to button, as a user does, until ``button_id`` has the focus."""
    for _ in range(8):
        if app.focused is not None and app.focused.id == button_id:
            return
        await pilot.press("tab")
    raise AssertionError(f"tab never reached #{button_id} (focus on {app.focused!r})")


async def press_enter(pilot) -> None:  # noqa: ANN001
    """Enter on the focused button, then wait out its 0.2 s press effect (which ignores presses)."""
    await pilot.press("enter")
    await pilot.pause(0.25)


def token_shown(modal: SecretOnceModal) -> str:
    return str(modal.query_one("#token").render())


async def test_enter_on_each_button_does_its_one_thing(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=(120, 36)) as pilot:
        modal = await open_token_dialog(app, pilot)
        token, under = modal.token, app.screen_stack[:-1]

        await focus_button(app, pilot, "reveal")
        await press_enter(pilot)
        assert token_shown(modal) == token  # one toggle, not two
        await press_enter(pilot)
        assert token not in token_shown(modal) and "•" in token_shown(modal)

        await focus_button(app, pilot, "copy")
        await press_enter(pilot)
        assert app.clipboard == token and app.screen is modal

        await focus_button(app, pilot, "copy_config")
        await press_enter(pilot)
        assert json.loads(app.clipboard)["mcpServers"]["toolbox-ci-bot"]["env"]["TBX_AGENT_TOKEN"] == token
        assert app.screen is modal  # still open: the token can still be copied

        await focus_button(app, pilot, "close")
        await press_enter(pilot)
        assert isinstance(app.screen, AgentsScreen)
        assert app.is_running and app._exception is None
        assert app.screen_stack == under  # the dialog popped once, nothing under it with it


async def test_clicking_the_buttons_does_the_same(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=(120, 36)) as pilot:
        modal = await open_token_dialog(app, pilot)
        await pilot.click("#reveal")
        assert token_shown(modal) == modal.token
        await pilot.click("#copy_config")
        await pilot.pause()
        assert app.screen is modal and modal.token in app.clipboard
        await pilot.click("#close")
        await pilot.pause()
        assert isinstance(app.screen, AgentsScreen) and app.is_running and app._exception is None


async def test_done_fits_an_80x24_terminal(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        modal = await open_token_dialog(app, pilot)
        screen = app.screen.region
        dialog = modal.query_one(".dialog").region
        assert screen.contains_region(dialog), f"dialog {dialog} runs off the screen {screen}"
        for button in modal.query(Button):
            assert screen.contains_region(button.region), f"#{button.id} at {button.region} is off {screen}"
        await focus_button(app, pilot, "close")
        await press_enter(pilot)
        assert isinstance(app.screen, AgentsScreen) and app._exception is None
