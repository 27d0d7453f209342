"""2 Servers on the real engine: e edits a running server's limits and env (a new
container, the same server), L shows its log on the whole screen, Escape goes back."""

from __future__ import annotations

import asyncio

import docker
import pytest
from textual.widgets import Input

from console.catalog import load_catalog
from console.services import servers
from console.services.server_status import call_tool
from console.services.tools import approve
from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.modals.edit_server import EditServerModal
from console.tui.screens.full_log import FullLogScreen
from console.tui.screens.servers import ServersScreen
from console.tui.widgets.server_log import ServerLog
from console.tui.widgets.server_table import ServerTable
from tests.tui.test_servers_screen import SIZE, cells, engine_backend, open_servers, until  # noqa: F401 - fixture

pytestmark = pytest.mark.docker


def container(server_id: str) -> docker.models.containers.Container:
    [found] = docker.from_env().containers.list(all=True, filters={"label": f"io.tbx.server={server_id}"})
    return found


async def test_edit_a_running_server_then_read_its_log_full_screen(engine_backend: Backend) -> None:  # noqa: F811
    ws = engine_backend.workspace
    await asyncio.to_thread(servers.add_server, ws, "local", load_catalog(ws.paths).get("time"))
    approve(ws, "local", "time")
    server_id = servers.resolve(ws, "local/time").server.id
    before = container(server_id).id
    app = ConsoleApp(engine_backend)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_servers(pilot)
        table = screen.query_one(ServerTable)
        await until(pilot, lambda: server_id in table.rows and cells(table, server_id)[1:3] == ["running", "healthy"],
                    60, "time to run healthy")
        await pilot.press("e")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, EditServerModal)
        modal.query_one("#limit-memory", Input).value = "200"
        modal.query_one("#env-new", Input).focus()
        await pilot.press(*"GREETING=hi")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is screen
        assert screen.busy == {server_id: "editing"}
        await until(pilot, lambda: not screen.busy, 60, "the edit to finish")
        activity = screen.query_one("#activity").lines  # type: ignore[attr-defined]
        assert activity[-1] == "time: env, limits changed, container made again; running again", activity
        edited = container(server_id)
        assert edited.id != before and edited.attrs["HostConfig"]["Memory"] == 200 * 1024 * 1024
        assert "GREETING=hi" in edited.attrs["Config"]["Env"]
        ws.refresh()
        assert all(t.exposable for t in ws.repos.tools.of_server(server_id)), "approvals kept"
        await until(pilot, lambda: cells(table, server_id)[1:3] == ["running", "healthy"], 60, "healthy again")

        await pilot.press("L")
        await pilot.pause()
        full = app.screen
        assert isinstance(full, FullLogScreen) and full.target == "local/time"
        log = full.query_one(ServerLog).log_widget
        assert app.focused is log and log.size.height > SIZE[1] - 6  # the whole screen, less its title and keys
        outcome = await asyncio.to_thread(call_tool, ws, "local/time/get_current_time", {"timezone": "Not/AZone"})
        assert outcome.result.is_error
        await until(pilot, lambda: any("Not/AZone" in line for line in log.lines), 20, "the failure in the log")
        await pilot.press("slash", *"azone")
        await pilot.pause()
        await pilot.press("escape")  # closes the search, stays on the log
        await pilot.pause()
        assert app.screen is full and app.focused is log
        await pilot.press("escape")  # back
        await pilot.pause()
        assert isinstance(app.screen, ServersScreen)
