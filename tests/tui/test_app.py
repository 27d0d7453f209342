"""The console's frame: first run, unlocking, moving around, help, palette, themes, keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable

from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.screens.setup import SetupScreen
from console.tui.screens.toolboxes import ToolboxesScreen
from console.tui.screens.unlock import UnlockScreen
from tests.support.tui import fresh_backend, still_app

SIZE = (120, 36)


async def test_first_run_with_a_passphrase(first_run: Backend, test_keyring) -> None:  # noqa: ANN001
    from keyring.backends import fail
    import keyring

    keyring.set_keyring(fail.Keyring())  # no usable keyring: the console must ask for a passphrase
    app = ConsoleApp(first_run, live=False)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, SetupScreen)
        await pilot.click("#first")
        await pilot.press(*"short")
        await pilot.click("#create")
        assert "at least 8 characters" in str(app.screen.query_one("#problem").render())
        app.screen.query_one("#first").value = "correct horse"
        app.screen.query_one("#second").value = "correct horse battery"
        await pilot.pause(0.3)  # a button ignores presses during its 0.2 s press effect
        await pilot.click("#create")
        assert "differ" in str(app.screen.query_one("#problem").render())
        app.screen.query_one("#second").value = "correct horse"
        await pilot.pause(0.3)
        await pilot.click("#create")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert first_run.paths.vault.exists()
        assert b"correct horse" not in first_run.paths.vault.read_bytes()
        await pilot.click("#skip")
        await pilot.pause()
        assert isinstance(app.screen, ToolboxesScreen)


async def test_unlocking_a_passphrase_vault(tmp_path: Path, test_keyring, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("TBX_PASSPHRASE", raising=False)
    backend = fresh_backend(tmp_path / "tbx")
    backend.create_vault("open sesame 123")
    app = ConsoleApp(Backend(backend.paths, backend.settings), live=False)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, UnlockScreen)
        await pilot.press(*"wrong passphrase", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "wrong passphrase; nothing was changed" in str(app.screen.query_one("#problem").render())
        await pilot.press(*"open sesame 123", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, ToolboxesScreen)


async def test_keyring_vault_opens_without_asking(seeded: Backend) -> None:
    app = ConsoleApp(Backend(seeded.paths, seeded.settings), live=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, ToolboxesScreen)
        table = app.screen.query_one(DataTable)
        assert [table.get_row_at(i)[0] for i in range(table.row_count)] == ["lab", "local"]


async def test_a_keyring_vault_is_opened_while_the_console_starts_and_no_unlock_screen_is_drawn(
        seeded: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[str] = []
    monkeypatch.setattr(UnlockScreen, "on_mount", lambda self: drawn.append("unlock"))
    backend = Backend(seeded.paths, seeded.settings)
    opening = backend.open_early()
    assert opening is not None
    app = ConsoleApp(backend, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ToolboxesScreen)
        assert drawn == []
        assert backend.open_early() is None  # the opening was taken: a later open starts afresh


async def test_a_slow_keyring_gets_the_unlock_screen_which_waits_for_the_same_opening(
        seeded: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from console.tui import app as app_module

    release, opens = threading.Event(), []
    real_open = Backend._open

    def slow_open(self: Backend, passphrase: str | None) -> object:
        opens.append(passphrase)
        release.wait(10)
        return real_open(self, passphrase)

    monkeypatch.setattr(Backend, "_open", slow_open)
    monkeypatch.setattr(app_module, "EARLY_OPEN_WAIT", 0.05)
    app = ConsoleApp(Backend(seeded.paths, seeded.settings), live=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        assert isinstance(app.screen, UnlockScreen)
        assert "opening" in str(app.screen.query_one("#problem").render())
        release.set()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, ToolboxesScreen)
        assert opens == [None]  # one opening, not a second one by the unlock screen


async def test_an_early_opening_that_fails_is_shown_on_the_unlock_screen(seeded: Backend) -> None:
    vault = seeded.paths.vault
    vault.write_bytes(vault.read_bytes()[:-200])  # cut short, as by a killed write
    app = ConsoleApp(Backend(seeded.paths, seeded.settings), live=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, UnlockScreen)
        problem = str(app.screen.query_one("#problem").render())
        assert "is damaged" in problem and "nothing was changed" in problem


async def test_digits_switch_screens_and_help_lists_binding_ids(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        help_table = app.screen.query_one("#keys", DataTable)
        ids = {help_table.get_row_at(i)[2] for i in range(help_table.row_count)}
        assert {"app.help", "app.quit", "nav.servers", "toolbox.gateway", "screen.filter"} <= ids
        await pilot.press("escape")
        assert isinstance(app.screen, ToolboxesScreen)


async def test_keys_can_be_remapped_from_config(seeded: Backend) -> None:
    seeded.settings.tui.keys["toolbox.add"] = "n"
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "AddToolboxModal"


async def test_themes_are_files_chosen_from_the_palette_and_remembered(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "tbx-dark"
        app.use_theme("tbx-light")
        await pilot.pause()
    assert seeded.ui_state()["theme"] == "tbx-light"
    again = still_app(seeded)
    async with again.run_test(size=SIZE):
        assert again.theme == "tbx-light"


async def test_an_invalid_theme_file_falls_back_with_a_notice(seeded: Backend) -> None:
    seeded.paths.themes_dir.mkdir(parents=True, exist_ok=True)
    (seeded.paths.themes_dir / "broken.toml").write_text('name = "broken"\nprimary = "not-a-colour"\n')
    (seeded.paths.themes_dir / "mine.toml").write_text('name = "mine"\nprimary = "#ff8800"\ndark = true\n')
    seeded.remember(theme="broken")
    app = still_app(seeded)
    async with app.run_test(size=SIZE):
        assert app.theme == "tbx-dark"
        assert "mine" in app.available_themes
        messages = [n.message for n in app._notifications]
        assert any("theme broken.toml: primary" in m and "using tbx-dark" in m for m in messages), messages


@pytest.mark.parametrize("mode", ["toolboxes"])
async def test_palette_lists_area_verb_commands(seeded: Backend, mode: str) -> None:
    from console.tui.commands import ConsoleCommands

    app = still_app(seeded)
    async with app.run_test(size=SIZE):
        provider = ConsoleCommands(app.screen)
        titles = [title for title, _help, _cb in provider._commands()]
        assert "go: Servers" in titles and "toolbox: Add" in titles and "theme: tbx-light" in titles
        assert "gateway: Start" in titles
