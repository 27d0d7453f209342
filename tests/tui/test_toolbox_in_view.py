"""The Servers, Tools, Grants and Try screens open on a toolbox that exists: a vault whose
only toolbox is not called ``local`` opens on it, not on "no toolbox named local"."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from console.model import Toolbox
from console.tui.backend import Backend
from tests.support.keyrings import MemoryKeyring
from tests.support.tui import WHEN, fresh_backend, still_app


def vault_with(root: Path, *names: str) -> Backend:
    backend = fresh_backend(root)
    backend.create_vault(None)
    with backend.workspace.change() as change:
        for name in names:
            change.repos.toolboxes.put(Toolbox(name=name, created=WHEN))
    return backend


def title(app) -> str:  # noqa: ANN001
    return str(app.screen.query_one("#title", Static).render())


async def test_the_only_toolbox_opens_whatever_its_name(tmp_path: Path, test_keyring: MemoryKeyring) -> None:
    app = still_app(vault_with(tmp_path / "tbx", "work"))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("2")
        await pilot.pause()
        assert app.toolbox_name == "work"
        assert title(app).startswith("toolbox work has no servers yet"), title(app)
        await pilot.press("3")
        await pilot.pause()
        assert "no toolbox named" not in title(app)


async def test_local_first_else_the_first_by_name(tmp_path: Path, test_keyring: MemoryKeyring) -> None:
    app = still_app(vault_with(tmp_path / "tbx", "zeta", "beta"))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("2")
        await pilot.pause()
        assert app.toolbox_name == "beta"


async def test_no_toolbox_yet_then_one_added(tmp_path: Path, test_keyring: MemoryKeyring) -> None:
    backend = vault_with(tmp_path / "tbx")
    app = still_app(backend)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("2")
        await pilot.pause()
        assert title(app) == "no toolboxes yet: add one on the Toolboxes screen (1)"
        with backend.workspace.change() as change:
            change.repos.toolboxes.put(Toolbox(name="edge", created=WHEN))
        await pilot.pause()
        await pilot.pause()
        assert app.toolbox_name == "edge" and title(app).startswith("toolbox edge"), title(app)
