"""The console adds a remote server (issue 21, part A): "Remote server (URL)" in the add
dialog, its URL and a header typed masked; the Servers table shows it with kind
``remote`` (health and ping live, no CPU, memory or restarts); stop and remove work on it.
The server is the tests' SDK server on 127.0.0.1; it records the headers it got."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from console.model import DesiredState
from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.modals.add_server import AddServerModal
from console.tui.modals.confirm import ConfirmModal
from console.tui.widgets.server_table import ServerTable
from tests.support.remote_mcp import RemoteServer
from tests.tui import test_servers_screen as servers_screen

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]
engine_backend = servers_screen.engine_backend
CANARY = servers_screen.CANARY


async def type_into(pilot, field: str, text: str) -> None:  # noqa: ANN001
    pilot.app.screen.query_one(f"#{field}", Input).focus()
    await pilot.pause()
    await pilot.press(*text)


async def test_add_a_remote_server_by_url_see_it_live_stop_and_remove_it(engine_backend: Backend,
                                                                           tmp_path: Path) -> None:
    ws = engine_backend.workspace
    app = ConsoleApp(engine_backend)
    with RemoteServer(tmp_path / "far") as far:
        async with app.run_test(size=servers_screen.SIZE) as pilot:
            screen = await servers_screen.open_servers(pilot)
            table = screen.query_one(ServerTable)
            await pilot.press("a")
            await pilot.pause()
            assert isinstance(app.screen, AddServerModal)
            await pilot.press(*"remote server", "enter")
            await pilot.pause()
            assert app.screen.current is not None and app.screen.current.id == "remote"  # type: ignore[attr-defined]
            await type_into(pilot, "name", "far")
            await type_into(pilot, "url", far.url)
            await type_into(pilot, "header-name-0", "X-Api-Key")
            await type_into(pilot, "header-value-0", CANARY)
            assert CANARY not in servers_screen.screen_text(app), "a header value is typed masked"
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert app.screen is screen

            def row() -> list[str]:
                key = next((sid for sid, s in screen.servers.items() if s.name == "far"), None)
                return servers_screen.cells(table, key) if key in table.rows else []

            await servers_screen.until(pilot, lambda: row()[1:3] == ["remote", "healthy"] and row()[3] != "-",
                                       30, "the remote server to be healthy with a ping")
            assert row()[4:7] == ["-", "-", "-"], "no restarts, CPU or memory for a server that is not ours to run"
            assert row()[7] == "0/2"
            server = ws.repos.servers.by_name(ws.repos.toolboxes.require("local").id, "far")
            assert server is not None and (server.kind, server.url, server.image) == ("remote", far.url, None)
            assert all(r["headers"].get("x-api-key") == CANARY for r in far.requests())

            server_id = servers_screen.select(screen, "far")
            await pilot.press("s")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmModal)
            await pilot.press("y")
            await servers_screen.until(pilot, lambda: row()[2] == "stopped", 30, "the remote server to be stopped")
            assert ws.repos.servers.get(server_id).desired_state is DesiredState.STOPPED

            await pilot.press("d")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmModal)
            await pilot.press("y")
            await servers_screen.until(pilot, lambda: server_id not in table.rows, 30, "the row to go")
            assert ws.repos.servers.get(server_id) is None
            assert not [s for s in ws.repos.secrets if s.name.startswith("local/far/")]
