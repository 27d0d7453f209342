"""The Servers screen's Config tab says what the server may ask agents for (issue 17, part 2)."""

from __future__ import annotations

import io

from rich.console import Console

from console.tui.backend import Backend
from console.tui.widgets.server_detail import config_table
from tests.support.tui import still_app

SIZE = (120, 36)


async def test_the_config_tab_names_what_the_server_may_ask_agents_for(seeded: Backend) -> None:
    ws = seeded.workspace
    server = ws.repos.servers.in_toolbox(ws.repos.toolboxes.require("local").id)[0]
    app = still_app(seeded)
    async with app.run_test(size=SIZE):
        def shown() -> str:
            console = Console(width=110, file=io.StringIO(), record=True)
            console.print(config_table(app, server))
            return console.export_text()

        assert "may ask  nothing of agents (tbx server allow" in shown()
        server.may_ask = ["sampling", "roots"]
        assert "may ask  sampling, roots (of the agent whose call it serves)" in shown()


def test_the_grants_view_names_it_on_the_server_row(seeded: Backend) -> None:
    from console.tui.widgets.grant_grid import GrantGrid, Kind, row_label

    ws = seeded.workspace
    box = ws.repos.toolboxes.require("local")
    server = ws.repos.servers.in_toolbox(box.id)[0]
    with ws.change() as change:
        server.may_ask = ["elicitation"]
        change.repos.servers.put(server)
    grid = GrantGrid.build(ws.tables(), "local")
    assert grid is not None
    labels = {row.server: row_label(row, "local") for row in grid.rows if row.kind is Kind.SERVER}
    assert labels[server.name] == (f"{server.name}/*", "all items · may ask elicitation")
    assert all(tag == "all items" for name, (_label, tag) in labels.items() if name != server.name)


async def test_the_config_tab_says_which_protocol_era_the_server_speaks(seeded: Backend) -> None:
    """Pressed as a user does: 2 for Servers, ] to the Config tab. A server discovered in
    the 2026-07-28 era says so; one never discovered says that."""
    from console.workspace import DISCOVERY_META
    from tests.tui.test_servers_screen import open_servers, screen_text, select

    ws = seeded.workspace
    first, second = ws.repos.servers.in_toolbox(ws.repos.toolboxes.require("local").id)[:2]
    with ws.change() as change:
        change.repos.meta.set(DISCOVERY_META + first.id, {
            "protocol_version": "2026-07-28", "server_info": {"name": "mcp-conformance-test-server", "version": "1.0"}})
        change.repos.meta.delete(DISCOVERY_META + second.id)
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_servers(pilot)
        select(screen, first.name)
        for _ in range(3):
            await pilot.press("right_square_bracket")
        await pilot.pause()
        shown = screen_text(app)
        assert "speaks   MCP 2026-07-28 only (each request carries its envelope; no session) · " \
               "mcp-conformance-test-server 1.0" in shown, shown
        select(screen, second.name)
        await pilot.pause()
        assert "speaks   not discovered yet" in screen_text(app)
