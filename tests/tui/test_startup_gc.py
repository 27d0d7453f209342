"""Garbage collection while the console starts: paused by ``tbx``, back once the console has
drawn its first screen. What starting makes (modules, the vault's tables, the first screen)
lives as long as the console; collections walking it before the first paint freed nothing."""

from __future__ import annotations

import gc
from pathlib import Path

import click.testing
import pytest

from console.cli import cli
from console.tui import app as app_module
from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.screens.toolboxes import ToolboxesScreen


def test_bare_tbx_runs_the_console_with_collections_paused(tbx_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    monkeypatch.setattr(app_module, "run_console", lambda debug_log=None: seen.append(gc.isenabled()))
    monkeypatch.setattr("console.cli.log_to_file", lambda paths, debug: None)  # leave pytest's logging be
    result = click.testing.CliRunner().invoke(cli, [])
    assert result.exit_code == 0, result.output
    assert seen == [False]
    assert gc.isenabled()  # and back on when the console has ended


def test_a_command_runs_with_collections_on(tbx_home: Path) -> None:
    result = click.testing.CliRunner().invoke(cli, ["locate"])
    assert result.exit_code == 0, result.output
    assert gc.isenabled()


async def test_the_console_collects_again_once_its_first_screen_is_drawn(seeded: Backend) -> None:
    gc.disable()  # as tbx starts it
    try:
        app = ConsoleApp(seeded, live=False)
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, ToolboxesScreen)
            assert gc.isenabled()
    finally:
        gc.enable()
