"""One user's whole journey through the console, on the real engine with real processes:
add a server, approve its tools, add an agent, grant it a tool in the matrix, see that in
`tbx access`, call the tool from Try as that agent through the gateway the console starts,
and watch the audit entry appear."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from click.testing import CliRunner
from textual.pilot import Pilot
from textual.widgets import DataTable, Select

from console.cli import cli
from console.config import load_settings
from console.paths import resolve_paths
from console.services.toolboxes import add_local
from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.modals.add_server import AddServerModal
from console.tui.modals.approve import ApproveModal
from console.tui.modals.confirm import ConfirmModal
from console.tui.screens.audit import AuditScreen
from console.tui.screens.grants import GrantsScreen
from console.tui.widgets.grant_matrix import GrantMatrix
from console.tui.widgets.try_result import ResultView
from tests.support.sharedkeys import shared_keyring_home

pytestmark = pytest.mark.docker
SIZE = (120, 36)
AGENT = "scout"


@pytest.fixture
def home(tmp_path: Path, docker_engine) -> Iterator[Backend]:  # noqa: ANN001
    """An empty installation with the local toolbox. The key sits in a keyring file, so the
    `tbx gateway serve` the console starts, and `tbx access`, can open the same vault."""
    with shared_keyring_home(tmp_path):
        paths = resolve_paths()
        paths.ensure()
        settings = load_settings(paths.config_file)
        settings.tui.refresh_seconds = 0.5
        backend = Backend(paths, settings)
        backend.create_vault(None)
        box = add_local(backend.workspace, "local")
        try:
            yield backend
        finally:
            backend.stop_gateway("local")
            for container in docker.from_env().containers.list(all=True,
                                                              filters={"label": f"io.tbx.toolbox={box.id}"}):
                container.remove(force=True)


async def until(pilot: Pilot, check, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_add_grant_access_try_and_audit(home: Backend) -> None:
    ws = home.workspace
    app = ConsoleApp(home)
    async with app.run_test(size=SIZE) as pilot:
        # 1. Servers: add `time` from the catalog picker; wait for it to run healthy.
        await pilot.press("2")
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AddServerModal), 5, "the add picker")
        await pilot.press(*"time", "enter", "ctrl+s")
        box = ws.repos.toolboxes.require("local")
        await until(pilot, lambda: (s := ws.repos.servers.by_name(box.id, "time")) is not None
                    and (h := app.health(s.id)) is not None and h.health == "healthy", 120, "time to be healthy")

        # 2. Tools: approve get_current_time (the modal names what is approved).
        await pilot.press("3")
        await pilot.pause()
        tools = app.screen.query_one(DataTable)
        await until(pilot, lambda: tools.row_count == 2, 10, "the two tools of time")
        keys = [tools.coordinate_to_cell_key((i, 0)).row_key.value for i in range(tools.row_count)]
        tools.move_cursor(row=next(i for i, key in enumerate(keys) if "get_current_time" in str(key)))
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ApproveModal), 5, "the approve modal")
        await pilot.press("y")
        server = ws.repos.servers.by_name(box.id, "time")
        assert server is not None
        await until(pilot, lambda: ws.repos.tools.get(f"{server.id}|get_current_time").exposable, 10, "approval")

        # 3. Agents: add one; its token is shown once.
        await pilot.press("5")
        await pilot.press("a")
        await pilot.pause()
        await pilot.press(*AGENT, "enter")
        await until(pilot, lambda: ws.repos.agents.by_name(AGENT) is not None, 10, "the agent")
        await pilot.press("escape")

        # 4. Grants: open the toolbox to it, then grant the one tool, with the space key.
        await pilot.press("4")
        await until(pilot, lambda: isinstance(app.screen, GrantsScreen), 5, "the matrix")
        matrix = app.screen.query_one(GrantMatrix)
        agent = matrix.grid.agent_named(AGENT)  # type: ignore[union-attr]
        for path in ("toolbox", "time/get_current_time"):
            row = next(r for r in matrix.grid.all_rows if (r.path or "toolbox") == path)  # type: ignore[union-attr]
            matrix.move_to(row.key, agent.id)  # type: ignore[union-attr]
            await pilot.press("space")
            await pilot.pause()
        await until(pilot, lambda: len(ws.repos.tool_grants.of_agent(ws.repos.agents.require(AGENT).id)) == 1
                    and ws.repos.toolbox_grants.get(f"{agent.id}|{box.id}") is not None, 10, "the grants")  # type: ignore[union-attr]

        # 5. The CLI agrees: tbx access shows exactly that tool as callable.
        access = CliRunner().invoke(cli, ["access", AGENT, "--json"], env=dict(os.environ))
        report = json.loads(access.stdout)
        callable_now = [(tb["name"], t["server"], t["tool"]) for tb in report["toolboxes"] for t in tb["tools"]
                        if t["allowed"]]
        assert callable_now == [("local", "time", "get_current_time")]

        # 6. Try: call it as the agent, through the gateway the console starts for it.
        await pilot.press("7")
        await pilot.pause()
        try_screen = app.screen
        table = try_screen.query_one("#tools", DataTable)
        await until(pilot, lambda: "time/get_current_time" in table.rows, 10, "the tool list")
        table.move_cursor(row=table.get_row_index("time/get_current_time"))
        await pilot.pause()
        try_screen.query_one("#caller", Select).value = AGENT
        timezone = try_screen.form.field("timezone")  # type: ignore[attr-defined]
        assert timezone is not None
        timezone.control.value = "America/New_York"
        await pilot.press("ctrl+enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal), 10, "the offer to start the gateway")
        await pilot.press("y")
        result = try_screen.query_one(ResultView)
        await until(pilot, lambda: result.outcome is not None, 60, "the call through the gateway")
        assert result.outcome is not None and result.outcome.ok, result.outcome
        assert "America/New_York" in result.outcome.result["content"][0]["text"]  # type: ignore[index]

        # 7. Audit: the gateway's record of that call appears in the live view.
        await pilot.press("6")
        await pilot.pause()
        audit = app.screen
        assert isinstance(audit, AuditScreen)
        records = audit.query_one("#records", DataTable)

        def seen() -> bool:
            rows = [[str(cell) for cell in records.get_row_at(i)] for i in range(records.row_count)]
            return any(row[2] == "owner" and row[3] == "tool.call" and row[4] == "allow"
                       and row[5] == "tool:local/time/get_current_time" for row in rows)

        await until(pilot, seen, 20, "the audit record of the call")


async def test_g_starts_and_stops_the_gateway_from_the_toolboxes_screen(home: Backend) -> None:
    app = ConsoleApp(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")
        await pilot.pause()
        await until(pilot, lambda: app.gateway_description == "gateway: stopped", 10, "the gateway's state")
        await pilot.press("g")
        await until(pilot, lambda: home.gateway_info("local") is not None, 30, "the gateway to start")
        await until(pilot, lambda: app.gateway_description.startswith("gateway: http://127.0.0.1:"), 10,
                    "the header to show it")
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: str(table.get_row_at(0)[6]).startswith("http://127.0.0.1:"), 10,
                    "the toolbox row to show its address")
        await pilot.press("g")
        await until(pilot, lambda: home.gateway_info("local") is None, 30, "the gateway to stop")
        await until(pilot, lambda: app.gateway_description == "gateway: stopped", 10, "the header to follow")
