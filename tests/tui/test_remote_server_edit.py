"""e on a remote server's row (issue 21): its URL and header names in the edit dialog,
a new header's value typed masked; saving tries the new URL, then keeps it. The servers
are the tests' SDK servers on 127.0.0.1; they record the headers they got."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import Input

from console.services.remote_servers import add_remote_server, headers_of
from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.modals.edit_remote_server import EditRemoteModal
from console.tui.widgets.server_table import ServerTable
from tests.support.remote_mcp import RemoteServer, free_port
from tests.tui import test_servers_screen as servers_screen
from tests.tui.test_remote_server_add import type_into

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]
engine_backend = servers_screen.engine_backend
CANARY = servers_screen.CANARY
NEW = "new-header-value-91d4"


async def test_edit_a_remote_servers_url_and_headers_with_the_keys(engine_backend: Backend, tmp_path: Path) -> None:
    ws = engine_backend.workspace
    app = ConsoleApp(engine_backend)
    with RemoteServer(tmp_path / "near") as near, RemoteServer(tmp_path / "far") as far:
        await asyncio.to_thread(add_remote_server, ws, "local", near.url, name="mover",
                                headers={"X-Api-Key": CANARY, "X-Gone": "gone-value"})
        async with app.run_test(size=servers_screen.SIZE) as pilot:
            screen = await servers_screen.open_servers(pilot)
            table = screen.query_one(ServerTable)
            await servers_screen.until(pilot, lambda: any(s.name == "mover" for s in screen.servers.values()),
                                       30, "the row")
            server_id = servers_screen.select(screen, "mover")
            assert server_id in table.rows
            await pilot.press("e")
            await pilot.pause()
            modal = app.screen
            assert isinstance(modal, EditRemoteModal)
            assert [modal.query_one(f"#header-name-{i}", Input).value for i in range(3)] == ["X-Api-Key", "X-Gone", ""]
            assert CANARY not in servers_screen.screen_text(app), "a kept value is never shown"

            # A URL that does not answer: the dialog closes, the edit fails, nothing changes.
            modal.query_one("#url", Input).value = ""
            await type_into(pilot, "url", f"http://127.0.0.1:{free_port()}/mcp")
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert app.screen is screen
            await servers_screen.until(pilot, lambda: not screen.busy, 60, "the failed edit to end")
            lines = screen.query_one("#activity").lines  # type: ignore[attr-defined]
            assert "edit failed, the old settings kept" in lines[-1] and CANARY not in lines[-1]
            ws.refresh()
            assert ws.repos.servers.get(server_id).url == near.url

            await pilot.press("e")
            await pilot.pause()
            modal = app.screen
            assert isinstance(modal, EditRemoteModal)
            modal.query_one("#url", Input).value = ""
            await type_into(pilot, "url", far.url)
            modal.query_one("#header-name-0", Input).value = ""
            await type_into(pilot, "header-name-0", "X-Key")  # renamed, its value kept
            modal.query_one("#header-name-1", Input).value = ""  # removed
            await type_into(pilot, "header-name-2", "X-New")
            await type_into(pilot, "header-value-2", NEW)
            assert NEW not in servers_screen.screen_text(app), "a new value is typed masked"
            await type_into(pilot, "header-name-1", "")
            await pilot.press("enter")
            await pilot.pause()
            assert app.screen is screen
            await servers_screen.until(pilot, lambda: not screen.busy, 60, "the edit to end")
            lines = screen.query_one("#activity").lines  # type: ignore[attr-defined]
            assert lines[-1].startswith("mover: url, headers changed"), lines[-1]
            ws.refresh()
            server = ws.repos.servers.get(server_id)
            assert server.url == far.url
            assert headers_of(ws, server) == {"X-Key": CANARY, "X-New": NEW}
            assert not any(s.value == "gone-value" for s in ws.repos.secrets)
            seen = far.requests()
            assert seen and all(r["headers"].get("x-key") == CANARY and r["headers"].get("x-new") == NEW
                                and "x-gone" not in r["headers"] for r in seen)
            assert CANARY not in servers_screen.screen_text(app) and NEW not in servers_screen.screen_text(app)
