"""First run from the keyboard alone, on an 80x24 terminal as on a large one.

Enter in the first passphrase field goes to the second, Enter there creates the vault,
as the unlock screen and every form submit on Enter. Nothing of the dialog is cut.
"""

from __future__ import annotations

import keyring
import pytest
from keyring.backends import fail
from textual.widgets import Button, Input

from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.screens.setup import SetupScreen
from console.tui.screens.toolboxes import ToolboxesScreen


def no_keyring() -> None:
    keyring.set_keyring(fail.Keyring())  # the console must ask for a passphrase


async def until_focused(app: ConsoleApp, pilot, widget_id: str) -> None:  # noqa: ANN001
    for _ in range(8):
        if app.focused is not None and app.focused.id == widget_id:
            return
        await pilot.press("tab")
    raise AssertionError(f"tab never reached #{widget_id} (focus on {app.focused!r})")


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
async def test_enter_in_the_confirmation_creates_the_vault(first_run: Backend, test_keyring, size) -> None:  # noqa: ANN001
    no_keyring()
    app = ConsoleApp(first_run, live=False)
    async with app.run_test(size=size) as pilot:
        assert isinstance(app.screen, SetupScreen)
        await until_focused(app, pilot, "first")
        await pilot.press(*"correct horse", "enter")
        assert app.focused is not None and app.focused.id == "second"  # Enter moves on, creates nothing yet
        await pilot.press(*"correct horse", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert first_run.paths.vault.exists()
        assert app.focused is not None and app.focused.id in ("starter-go", "skip")
        await pilot.press("tab") if app.focused.id == "starter-go" else None
        assert app.focused.id == "skip"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ToolboxesScreen)


async def test_enter_with_differing_passphrases_says_so_and_creates_nothing(first_run: Backend, test_keyring) -> None:  # noqa: ANN001
    no_keyring()
    app = ConsoleApp(first_run, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await until_focused(app, pilot, "first")
        await pilot.press(*"correct horse", "enter", *"correct mule", "enter")
        await pilot.pause()
        assert "differ" in str(app.screen.query_one("#problem").render())
        assert not first_run.paths.vault.exists()


async def test_the_whole_dialog_fits_80x24(first_run: Backend, test_keyring) -> None:  # noqa: ANN001
    no_keyring()
    app = ConsoleApp(first_run, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen.region
        for widget in [app.screen.query_one("#setup"), app.screen.query_one(".dialog-title"),
                       *app.screen.query(Input), app.screen.query_one("#create", Button)]:
            assert screen.contains_region(widget.region), f"{widget!r} at {widget.region} is cut by {screen}"
        dialog = app.screen.query_one("#setup")
        assert dialog.scroll_y == 0 and dialog.max_scroll_y == 0  # nothing hidden below or above
