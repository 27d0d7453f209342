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
